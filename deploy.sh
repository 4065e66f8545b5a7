#!/usr/bin/env bash
# Deploy every Cloud Function, the Firestore rules and indexes, the Pub/Sub topics, the BigQuery
# metric-store dataset with its landing tables and the BigQuery subscriptions that land rows in
# them, and the Cloud Scheduler job.
#
#   ./deploy.sh --dry-run [--existing] [--project P] [--region R]   print every command, touch nothing
#   ./deploy.sh --project P [--region R]               deploy for real (gcloud + firebase CLIs)
#   ... --backfill-links   then land the spillover links Firestore recorded that BigQuery lacks
#
# Re-runnable: every resource is looked up first (describe) and created only if missing, else
# updated to what this script says; functions deploy, IAM bindings, `CREATE TABLE IF NOT EXISTS`
# and `firebase deploy` are create-or-update by themselves. A dry run prints each lookup and
# answers it "missing" (a first deploy), or "there" with --existing (a second deploy).
# The trigger table mirrors functions/triggers.py (a test keeps them in step).
set -euo pipefail

DRY_RUN=0
DRY_RUN_EXISTING=0
BACKFILL_LINKS=0
PROJECT="${GOOGLE_CLOUD_PROJECT:-}"
REGION="${FUNCTION_REGION:-europe-west1}"
RUNTIME="python311"
SERVICE_ACCOUNT="${SERVICE_ACCOUNT:-}"
# The metric store: BigQuery dataset of the landing tables and its location (default: the region).
METRIC_DATASET="${METRIC_DATASET:-offers_metrics}"
METRIC_LOCATION="${METRIC_LOCATION:-}"
# After a ledger key rotation: the Secret Manager secret holding the retired public keys (PEM).
LEDGER_KEYRING_SECRET="${LEDGER_KEYRING_SECRET:-}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY_RUN=1; shift ;;
    --existing) DRY_RUN_EXISTING=1; shift ;;
    --backfill-links) BACKFILL_LINKS=1; shift ;;
    --project) PROJECT="$2"; shift 2 ;;
    --region) REGION="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
if [[ -z "$PROJECT" ]]; then
  if [[ $DRY_RUN -eq 1 ]]; then PROJECT="my-project"; else echo "--project is required" >&2; exit 2; fi
fi
if [[ $DRY_RUN_EXISTING -eq 1 && $DRY_RUN -eq 0 ]]; then echo "--existing goes with --dry-run" >&2; exit 2; fi
METRIC_LOCATION="${METRIC_LOCATION:-$REGION}"

exec 3>&1  # commands are printed on fd 3, so a lookup's own output can be captured
run() {
  if [[ $DRY_RUN -eq 1 ]]; then
    printf '+' >&3; printf ' %q' "$@" >&3; printf '\n' >&3
  else
    "$@"
  fi
}
# lookup NAME CMD...: a value the cloud generated (prints CMD in a dry run and stands in <NAME>).
lookup() {
  local name="$1"; shift
  if [[ $DRY_RUN -eq 1 ]]; then
    run "$@"; printf '<%s>' "$name"
  else
    "$@"
  fi
}

# exists DESCRIBE...: whether a resource is there (its describe succeeds). A dry run prints the
# describe and answers "missing", or "there" with --existing. Every create is guarded by one:
#   if exists gcloud X describe NAME; then run gcloud X update NAME ...; else run gcloud X create NAME ...; fi
exists() {
  if [[ $DRY_RUN -eq 1 ]]; then
    run "$@"
    [[ $DRY_RUN_EXISTING -eq 1 ]]
    return
  fi
  "$@" >/dev/null 2>&1
}
ensure_topic() {  # ensure_topic NAME: create the topic unless it exists (a topic has nothing to update)
  exists gcloud pubsub topics describe "$1" --project="$PROJECT" ||
    run gcloud pubsub topics create "$1" --project="$PROJECT"
}
# hold SUBSCRIPTION TOPIC: a pull subscription that keeps what reaches TOPIC for a week and
# never expires (a topic without a subscription drops what is published to it).
hold() {
  local flags=(--project="$PROJECT" --message-retention-duration=7d --expiration-period=never)
  if exists gcloud pubsub subscriptions describe "$1" --project="$PROJECT"; then
    run gcloud pubsub subscriptions update "$1" "${flags[@]}"
  else
    run gcloud pubsub subscriptions create "$1" --topic="$2" "${flags[@]}"
  fi
}

SA_FLAG=()
[[ -n "$SERVICE_ACCOUNT" ]] && SA_FLAG=(--service-account="$SERVICE_ACCOUNT")
COMMON=(--gen2 --runtime="$RUNTIME" --region="$REGION" --source=. --project="$PROJECT" "${SA_FLAG[@]}"
        --set-env-vars="GOOGLE_CLOUD_PROJECT=$PROJECT,FUNCTION_REGION=$REGION,METRIC_STORE=bigquery,METRIC_DATASET=$METRIC_DATASET,METRIC_LOCATION=$METRIC_LOCATION,METRIC_LANDING=pubsub"
        --set-secrets="LEDGER_SIGNING_KEY=ledger-signing-key:latest${LEDGER_KEYRING_SECRET:+,LEDGER_KEYRING=$LEDGER_KEYRING_SECRET:latest}")

PY=.venv/bin/python
[[ -x "$PY" ]] || PY=python3

# -- topics: every one functions/config.py names (inbound, outbound, landing, dead letters) -----
# (assigned first: a failing $(...) stops the script only in an assignment)
TOPIC_NAMES=$("$PY" -c 'from functions.config import Topics; print(*Topics().all().values())')
read -r -a TOPICS <<<"$TOPIC_NAMES"
for name in "${TOPICS[@]}"; do
  ensure_topic "$name"
done
# The Pub/Sub service agent writes BigQuery rows and moves dead letters.
PROJECT_NUMBER=$(lookup project-number gcloud projects describe "$PROJECT" --format='value(projectNumber)')
PUBSUB_AGENT="serviceAccount:service-$PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com"
# The functions' dead letter: what a Pub/Sub function failed 10 times. Its hold subscription
# keeps each message 7 days for an operator to read and replay (docs/operations.md).
DEAD_LETTER_SPEC=$("$PY" -c 'from functions.adapters.pubsub import hold_id
from functions.config import settings
from functions.triggers import DEAD_LETTER_AFTER_ATTEMPTS
print(settings().topic("dead_letter"), hold_id("dead_letter"), DEAD_LETTER_AFTER_ATTEMPTS)')
read -r DEAD_LETTER_TOPIC DEAD_LETTER_TOPIC_HOLD DEAD_LETTER_AFTER <<<"$DEAD_LETTER_SPEC"
hold "$DEAD_LETTER_TOPIC_HOLD" "$DEAD_LETTER_TOPIC"
run gcloud pubsub topics add-iam-policy-binding "$DEAD_LETTER_TOPIC" --project="$PROJECT" \
  --member="$PUBSUB_AGENT" --role=roles/pubsub.publisher

# -- metric store: the BigQuery dataset and its landing tables, before the functions using them --
# The DDL comes from functions/adapters/metric_store/schema.py (partitioned by day, clustered), so
# the tables the functions expect and the tables deployed cannot drift.
METRIC_DDL=$("$PY" -c 'import sys
from functions.adapters.metric_store import schema
for table in schema.COLUMNS:
    print(schema.ddl(table, dataset=sys.argv[1]))' "$PROJECT.$METRIC_DATASET")
exists bq --project_id="$PROJECT" show --dataset "$PROJECT:$METRIC_DATASET" ||
  run bq --project_id="$PROJECT" --location="$METRIC_LOCATION" mk --force --dataset \
    --description="Offer experiments: unit-level landing tables (KPI events, exposures, fraud flags, links)" \
    "$PROJECT:$METRIC_DATASET"
# CREATE TABLE IF NOT EXISTS: a table already there is kept as it is.
while IFS= read -r statement; do
  run bq --project_id="$PROJECT" --location="$METRIC_LOCATION" query --use_legacy_sql=false --nouse_cache "$statement"
done <<<"$METRIC_DDL"

# -- landing: per landing table a topic and a BigQuery subscription writing its rows -------------
# The functions publish each checked row to its table's topic (METRIC_LANDING=pubsub); Pub/Sub
# writes them in batches with the table's own schema. A row BigQuery refuses is retried, then
# goes to the landing dead letter, whose hold subscription keeps it for a week. Topic and
# subscription names come from functions/adapters/metric_store/landing.py.
LANDING=$("$PY" -c 'from functions.adapters.metric_store import landing
from functions.config import settings
print(settings().topic(landing.DEAD_LETTER_KEY), landing.dead_letter_hold_id())
for table, key in landing.TOPIC_KEYS.items():
    print(table, settings().topic(key), landing.subscription_id(table, "bigquery"))')
read -r DEAD_LETTER DEAD_LETTER_HOLD <<<"$(head -n 1 <<<"$LANDING")"
hold "$DEAD_LETTER_HOLD" "$DEAD_LETTER"
run gcloud pubsub topics add-iam-policy-binding "$DEAD_LETTER" --project="$PROJECT" \
  --member="$PUBSUB_AGENT" --role=roles/pubsub.publisher
while read -r table topic subscription; do
  run bq --project_id="$PROJECT" add-iam-policy-binding --member="$PUBSUB_AGENT" --role=roles/bigquery.dataEditor \
    "$PROJECT:$METRIC_DATASET.$table"
  flags=(--project="$PROJECT" --bigquery-table="$PROJECT:$METRIC_DATASET.$table" --use-table-schema
         --dead-letter-topic="$DEAD_LETTER" --max-delivery-attempts=5)
  if exists gcloud pubsub subscriptions describe "$subscription" --project="$PROJECT"; then
    run gcloud pubsub subscriptions update "$subscription" "${flags[@]}"
  else
    run gcloud pubsub subscriptions create "$subscription" --topic="$topic" "${flags[@]}"
  fi
  run gcloud pubsub subscriptions add-iam-policy-binding "$subscription" --project="$PROJECT" \
    --member="$PUBSUB_AGENT" --role=roles/pubsub.subscriber
done < <(tail -n +2 <<<"$LANDING")

# -- console assets: the Firebase JS SDK, pinned, vendored from npm (no CDN at run time) -----
run bash scripts/vendor_firebase.sh

# -- HTTP functions: name memory min max ------------------------------------------------------
HTTP_FUNCTIONS=(
  "holdouts 512Mi 0 20"
  "experiments 512Mi 0 20"
  "analytics 2Gi 0 10"
  "rollouts 512Mi 0 10"
  "ledger 1Gi 0 10"
  "assign 512Mi 1 100"
  "console 1Gi 0 10"
)
for spec in "${HTTP_FUNCTIONS[@]}"; do
  read -r name memory min max <<<"$spec"
  # Authentication is the function's own (Firebase ID tokens), so the HTTP endpoint is public.
  run gcloud functions deploy "$name" "${COMMON[@]}" --entry-point="$name" --trigger-http \
    --allow-unauthenticated --memory="$memory" --min-instances="$min" --max-instances="$max" --timeout=60s
done

# -- Pub/Sub functions: name topic memory max -------------------------------------------------
PUBSUB_FUNCTIONS=(
  "kpi_events kpi-events 512Mi 50"
  "fraud_signals fraud-signals 256Mi 10"
  "spillover_events spillover-events 256Mi 10"
  "exposures exposures 256Mi 20"
  "sweep sweep-ticks 1Gi 1"
)
for spec in "${PUBSUB_FUNCTIONS[@]}"; do
  read -r name topic memory max <<<"$spec"
  run gcloud functions deploy "$name" "${COMMON[@]}" --entry-point="$name" --trigger-topic="$topic" \
    --retry --memory="$memory" --min-instances=0 --max-instances="$max" --timeout=540s
done
# Poison messages go to the dead-letter topic after DEAD_LETTER_AFTER_ATTEMPTS (10) attempts
# instead of retrying forever.
# Eventarc names each trigger's subscription itself (transport.pubsub.subscription is output
# only), so the script looks the name up instead of guessing it.
for spec in "${PUBSUB_FUNCTIONS[@]}"; do
  read -r name topic _ <<<"$spec"
  trigger=$(lookup "trigger-of-$name" gcloud functions describe "$name" --gen2 --region="$REGION" \
    --project="$PROJECT" --format='value(eventTrigger.trigger)')
  subscription=$(lookup "subscription-of-$name" gcloud eventarc triggers describe "$trigger" \
    --location="$REGION" --project="$PROJECT" --format='value(transport.pubsub.subscription)')
  run gcloud pubsub subscriptions update "$subscription" --project="$PROJECT" \
    --dead-letter-topic="$DEAD_LETTER_TOPIC" --max-delivery-attempts="$DEAD_LETTER_AFTER"
  # Dead lettering needs the Pub/Sub agent to read the subscription (and publish, granted above).
  run gcloud pubsub subscriptions add-iam-policy-binding "$subscription" --project="$PROJECT" \
    --member="$PUBSUB_AGENT" --role=roles/pubsub.subscriber
done

# -- Firestore-triggered functions ------------------------------------------------------------
run gcloud functions deploy experiment_written "${COMMON[@]}" --entry-point=experiment_written \
  --trigger-location="$REGION" \
  --trigger-event-filters="type=google.cloud.firestore.document.v1.written" \
  --trigger-event-filters="database=(default)" \
  --trigger-event-filters-path-pattern="document=offerExperiments/{experimentId}" \
  --retry --memory=256Mi --max-instances=10

# -- Firestore rules and indexes --------------------------------------------------------------
run firebase deploy --only firestore:rules,firestore:indexes --project "$PROJECT" --non-interactive

# -- Scheduler: the sweep every 5 minutes -----------------------------------------------------
SWEEP_JOB=(offers-sweep --project="$PROJECT" --location="$REGION" --schedule="*/5 * * * *" --topic=sweep-ticks
           --message-body='{}' --time-zone=UTC)
if exists gcloud scheduler jobs describe offers-sweep --project="$PROJECT" --location="$REGION"; then
  run gcloud scheduler jobs update pubsub "${SWEEP_JOB[@]}"
else
  run gcloud scheduler jobs create pubsub "${SWEEP_JOB[@]}"
fi

# -- links recorded before the metric store had them (a project older than the warehouse) ------
# Idempotent: lands only the (link, cohort) rows the links table lacks (docs/operations.md).
if [[ $BACKFILL_LINKS -eq 1 ]]; then
  run env GOOGLE_CLOUD_PROJECT="$PROJECT" METRIC_STORE=bigquery METRIC_DATASET="$METRIC_DATASET" \
    METRIC_LOCATION="$METRIC_LOCATION" "$PY" -m localdev.backfill_links
fi

[[ $DRY_RUN -eq 1 ]] && echo "# dry run: nothing was deployed"
exit 0
