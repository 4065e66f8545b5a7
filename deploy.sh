#!/usr/bin/env bash
# Deploy every Cloud Function, the Firestore rules and indexes, the Pub/Sub topics, the BigQuery
# metric-store dataset with its landing tables and the BigQuery subscriptions that land rows in
# them, and the Cloud Scheduler job.
#
#   ./deploy.sh --dry-run [--project P] [--region R]   print every command, touch nothing
#   ./deploy.sh --project P [--region R]               deploy for real (gcloud + firebase CLIs)
#
# The trigger table mirrors functions/triggers.py (a test keeps them in step).
set -euo pipefail

DRY_RUN=0
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
    --project) PROJECT="$2"; shift 2 ;;
    --region) REGION="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
if [[ -z "$PROJECT" ]]; then
  if [[ $DRY_RUN -eq 1 ]]; then PROJECT="my-project"; else echo "--project is required" >&2; exit 2; fi
fi
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

SA_FLAG=()
[[ -n "$SERVICE_ACCOUNT" ]] && SA_FLAG=(--service-account="$SERVICE_ACCOUNT")
COMMON=(--gen2 --runtime="$RUNTIME" --region="$REGION" --source=. --project="$PROJECT" "${SA_FLAG[@]}"
        --set-env-vars="GOOGLE_CLOUD_PROJECT=$PROJECT,FUNCTION_REGION=$REGION,METRIC_STORE=bigquery,METRIC_DATASET=$METRIC_DATASET,METRIC_LOCATION=$METRIC_LOCATION,METRIC_LANDING=pubsub"
        --set-secrets="LEDGER_SIGNING_KEY=ledger-signing-key:latest${LEDGER_KEYRING_SECRET:+,LEDGER_KEYRING=$LEDGER_KEYRING_SECRET:latest}")

# -- topics ---------------------------------------------------------------------------------
TOPICS=(kpi-events fraud-signals spillover-events exposures sweep-ticks kill-switch experiment-state
        ledger-checkpoints ledger-alerts quarantined-events dead-letter)
for topic in "${TOPICS[@]}"; do
  run gcloud pubsub topics create "$topic" --project="$PROJECT"
done

# -- metric store: the BigQuery dataset and its landing tables, before the functions using them --
# The DDL comes from functions/adapters/metric_store/schema.py (partitioned by day, clustered), so
# the tables the functions expect and the tables deployed cannot drift.
PY=.venv/bin/python
[[ -x "$PY" ]] || PY=python3
METRIC_DDL=$("$PY" -c 'import sys
from functions.adapters.metric_store import schema
for table in schema.COLUMNS:
    print(schema.ddl(table, dataset=sys.argv[1]))' "$PROJECT.$METRIC_DATASET")
run bq --project_id="$PROJECT" --location="$METRIC_LOCATION" mk --force --dataset \
  --description="Offer experiments: unit-level landing tables (KPI events, exposures, fraud flags, links)" \
  "$PROJECT:$METRIC_DATASET"
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
# The Pub/Sub service agent writes the rows and moves dead letters.
PROJECT_NUMBER=$(lookup project-number gcloud projects describe "$PROJECT" --format='value(projectNumber)')
PUBSUB_AGENT="serviceAccount:service-$PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com"
run gcloud pubsub topics create "$DEAD_LETTER" --project="$PROJECT"
run gcloud pubsub subscriptions create "$DEAD_LETTER_HOLD" --project="$PROJECT" --topic="$DEAD_LETTER" \
  --message-retention-duration=7d --expiration-period=never
run gcloud pubsub topics add-iam-policy-binding "$DEAD_LETTER" --project="$PROJECT" \
  --member="$PUBSUB_AGENT" --role=roles/pubsub.publisher
while read -r table topic subscription; do
  run gcloud pubsub topics create "$topic" --project="$PROJECT"
  run bq --project_id="$PROJECT" add-iam-policy-binding --member="$PUBSUB_AGENT" --role=roles/bigquery.dataEditor \
    "$PROJECT:$METRIC_DATASET.$table"
  run gcloud pubsub subscriptions create "$subscription" --project="$PROJECT" --topic="$topic" \
    --bigquery-table="$PROJECT:$METRIC_DATASET.$table" --use-table-schema \
    --dead-letter-topic="$DEAD_LETTER" --max-delivery-attempts=5
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
# Poison messages go to a dead-letter topic after 10 attempts instead of retrying forever.
# Eventarc names each trigger's subscription itself (transport.pubsub.subscription is output
# only), so the script looks the name up instead of guessing it.
for spec in "${PUBSUB_FUNCTIONS[@]}"; do
  read -r name topic _ <<<"$spec"
  trigger=$(lookup "trigger-of-$name" gcloud functions describe "$name" --gen2 --region="$REGION" \
    --project="$PROJECT" --format='value(eventTrigger.trigger)')
  subscription=$(lookup "subscription-of-$name" gcloud eventarc triggers describe "$trigger" \
    --location="$REGION" --project="$PROJECT" --format='value(transport.pubsub.subscription)')
  run gcloud pubsub subscriptions update "$subscription" --project="$PROJECT" \
    --dead-letter-topic=dead-letter --max-delivery-attempts=10
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
run gcloud scheduler jobs create pubsub offers-sweep --project="$PROJECT" --location="$REGION" \
  --schedule="*/5 * * * *" --topic=sweep-ticks --message-body='{}' --time-zone=UTC

[[ $DRY_RUN -eq 1 ]] && echo "# dry run: nothing was deployed"
exit 0
