"""deploy.sh --dry-run names every entry point of main.py with the trigger functions/triggers.py declares,
and shows that a second run updates what the first created instead of failing on it."""

from __future__ import annotations

import os
import re
import shlex
import subprocess

from functions.adapters.metric_store import schema
from functions.adapters.pubsub import hold_id
from functions.config import Topics
from functions.triggers import (
    DEAD_LETTER_AFTER_ATTEMPTS,
    FIRESTORE_FUNCTIONS,
    HTTP_FUNCTIONS,
    PUBSUB_FUNCTIONS,
    SWEEP_SCHEDULE,
)
from localdev.targets import entry_points
from tests.conftest import ROOT


def dry_run(*flags: str) -> list[list[str]]:
    """Each printed command as its argv (the script prints shell-quoted words). Without flags every
    existence check answers "missing" (a first deploy); `--existing` answers "there" (a re-run)."""
    out = subprocess.run(
        ["bash", str(ROOT / "deploy.sh"), "--dry-run", *flags, "--project", "demo-check"],
        capture_output=True, text=True, check=True, cwd=ROOT, timeout=60,
    )
    return [shlex.split(line[2:]) for line in out.stdout.splitlines() if line.startswith("+ ")]


def creates(argv: list[str]) -> bool:
    """Whether a command makes a resource that a second run would find existing."""
    verbs = [w for w in argv[:5] if not w.startswith("-")]
    return "create" in verbs or (argv[0] == "bq" and "mk" in argv) or (
        argv[0] == "bq" and "query" in argv and bool(re.match(r"\s*CREATE\b", argv[-1], re.I)))


def guard_of(argv: list[str]) -> list[str]:
    """The describe that must come right before a create: same command group, same resource."""
    if argv[0] == "bq" and "mk" in argv:
        return ["bq", f"--project_id={'demo-check'}", "show", "--dataset", argv[-1]]
    at = argv.index("create")
    rest = argv[at + 1:]
    if argv[:3] == ["gcloud", "scheduler", "jobs"]:
        rest = rest[1:]  # `create pubsub JOB`: the target type comes first
    return [*argv[:at], "describe", rest[0]]


def deployed() -> dict[str, list[str]]:
    return {argv[3]: argv[4:] for argv in dry_run() if argv[:3] == ["gcloud", "functions", "deploy"]}


def test_every_entry_point_is_deployed_with_its_trigger():
    functions = deployed()
    points = entry_points()
    assert set(functions) == set(points)
    assert set(HTTP_FUNCTIONS) == {n for n, kind in points.items() if kind == "http"}
    for name in HTTP_FUNCTIONS:
        assert "--trigger-http" in functions[name]
    topics = Topics()
    for name, topic_key in PUBSUB_FUNCTIONS.items():
        assert f"--trigger-topic={getattr(topics, topic_key)}" in functions[name]
    for name, (_collection, pattern) in FIRESTORE_FUNCTIONS.items():
        assert "--trigger-event-filters=type=google.cloud.firestore.document.v1.written" in functions[name]
        assert f"--trigger-event-filters-path-pattern=document={pattern}" in functions[name]


def test_every_topic_rules_indexes_and_scheduler_are_deployed():
    commands = dry_run()
    created = {argv[4] for argv in commands if argv[:4] == ["gcloud", "pubsub", "topics", "create"]}
    assert set(Topics().all().values()) <= created
    assert ["firebase", "deploy", "--only", "firestore:rules,firestore:indexes"] in [argv[:4] for argv in commands]
    scheduler = [argv for argv in commands if argv[:5] == ["gcloud", "scheduler", "jobs", "create", "pubsub"]]
    assert len(scheduler) == 1 and f"--schedule={SWEEP_SCHEDULE}" in scheduler[0]


def test_dry_run_touches_nothing_and_exits_zero():
    out = subprocess.run(["bash", str(ROOT / "deploy.sh"), "--dry-run"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0
    assert out.stdout.strip().endswith("# dry run: nothing was deployed")


def test_dead_letter_policy_targets_the_subscription_eventarc_named():
    """Eventarc generates each trigger's subscription name; the script must look it up (through
    the function's trigger) rather than guess a pattern such as eventarc-<region>-<fn>-sub."""
    commands = dry_run()
    updates = [argv for argv in commands if argv[:4] == ["gcloud", "pubsub", "subscriptions", "update"]]
    assert {argv[4] for argv in updates} == {f"<subscription-of-{name}>" for name in PUBSUB_FUNCTIONS}
    for name in PUBSUB_FUNCTIONS:
        trigger_lookup = [argv for argv in commands if argv[:4] == ["gcloud", "functions", "describe", name]]
        assert len(trigger_lookup) == 1 and "--format=value(eventTrigger.trigger)" in trigger_lookup[0]
        sub_lookup = [argv for argv in commands
                      if argv[:5] == ["gcloud", "eventarc", "triggers", "describe", f"<trigger-of-{name}>"]]
        assert len(sub_lookup) == 1 and "--format=value(transport.pubsub.subscription)" in sub_lookup[0]
    assert not any("eventarc-" in word for argv in commands for word in argv)


def _uploaded(paths: list[str]) -> set[str]:
    """The paths `gcloud functions deploy --source=.` would upload: .gcloudignore uses gitignore
    syntax, so git itself evaluates it (check-ignore prints the ignored ones)."""
    out = subprocess.run(
        ["git", "-c", f"core.excludesFile={ROOT / '.gcloudignore'}", "check-ignore", "--no-index", "--stdin"],
        input="\n".join(paths), capture_output=True, text=True, cwd=ROOT, timeout=30,
    )
    return set(paths) - set(out.stdout.split())


def test_a_deploy_uploads_runtime_code_only():
    tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=ROOT, check=True).stdout.split()
    uploaded = _uploaded(tracked)
    assert {"main.py", "requirements.txt"} <= uploaded
    assert any(path.startswith("functions/") for path in uploaded)
    for folder in ("tests/", "bench/", "localdev/", "scripts/", "docs/", ".ci/"):
        assert not any(path.startswith(folder) for path in uploaded), folder
    assert all(path == "main.py" or path == "requirements.txt" or path.startswith("functions/") for path in uploaded)


def test_metric_store_dataset_and_landing_tables_come_before_the_functions():
    commands = dry_run()
    dataset = [i for i, argv in enumerate(commands) if argv[0] == "bq" and "mk" in argv and "--dataset" in argv]
    assert len(dataset) == 1 and commands[dataset[0]][-1] == "demo-check:offers_metrics"
    assert "--force" in commands[dataset[0]]  # a second deploy finds it existing and goes on
    ddl = {argv[-1]: i for i, argv in enumerate(commands) if argv[0] == "bq" and "query" in argv}
    assert set(ddl) == {schema.ddl(table, dataset="demo-check.offers_metrics") for table in schema.COLUMNS}
    assert all("PARTITION BY DATE(" in sql and "CLUSTER BY" in sql for sql in ddl)
    first_function = min(i for i, argv in enumerate(commands) if argv[:3] == ["gcloud", "functions", "deploy"])
    assert dataset[0] < min(ddl.values()) and max(ddl.values()) < first_function
    for name, flags in deployed().items():
        env = next(f for f in flags if f.startswith("--set-env-vars=")).split("=", 1)[1].split(",")
        assert {"METRIC_STORE=bigquery", "METRIC_DATASET=offers_metrics"} <= set(env), name


def test_metric_dataset_and_location_follow_the_environment():
    out = subprocess.run(
        ["bash", str(ROOT / "deploy.sh"), "--dry-run", "--project", "demo-check"],
        capture_output=True, text=True, check=True, cwd=ROOT, timeout=60,
        env={**os.environ, "METRIC_DATASET": "ab_metrics", "METRIC_LOCATION": "EU"},
    )
    assert "--location=EU mk --force --dataset" in out.stdout and "demo-check:ab_metrics" in out.stdout
    assert "METRIC_DATASET=ab_metrics" in out.stdout and "demo-check.ab_metrics.kpi_events" in out.stdout


def test_each_landing_table_gets_a_topic_and_a_bigquery_subscription_with_a_dead_letter():
    from functions.adapters.metric_store import landing

    commands = dry_run()
    topics = Topics()
    dead_letter = getattr(topics, landing.DEAD_LETTER_KEY)
    agent = "serviceAccount:service-<project-number>@gcp-sa-pubsub.iam.gserviceaccount.com"
    lookup = [i for i, argv in enumerate(commands) if argv[:3] == ["gcloud", "projects", "describe"]]
    assert len(lookup) == 1 and "--format=value(projectNumber)" in commands[lookup[0]]
    created = {argv[4]: (i, argv) for i, argv in enumerate(commands)
               if argv[:4] == ["gcloud", "pubsub", "subscriptions", "create"]}
    ddl = {argv[-1]: i for i, argv in enumerate(commands) if argv[0] == "bq" and "query" in argv}
    for table, key in landing.TOPIC_KEYS.items():
        name = landing.subscription_id(table, "bigquery")
        assert name == f"{getattr(topics, key)}-to-bigquery"  # chosen by the script, not generated
        at, argv = created[name]
        flags = set(argv[5:])
        assert {f"--topic={getattr(topics, key)}", f"--bigquery-table=demo-check:offers_metrics.{table}",
                "--use-table-schema", f"--dead-letter-topic={dead_letter}"} <= flags
        attempts = [int(f.split("=")[1]) for f in flags if f.startswith("--max-delivery-attempts=")]
        assert len(attempts) == 1 and 5 <= attempts[0] <= 100
        assert "--drop-unknown-fields" not in flags  # a row that does not fit goes to the dead letter
        writer = [i for i, a in enumerate(commands) if a[0] == "bq" and "add-iam-policy-binding" in a
                  and a[-1] == f"demo-check:offers_metrics.{table}"]
        assert len(writer) == 1 and f"--member={agent}" in commands[writer[0]]
        assert "--role=roles/bigquery.dataEditor" in commands[writer[0]]
        assert ddl[schema.ddl(table, dataset="demo-check.offers_metrics")] < writer[0] < at
        reader = [a for a in commands if a[:5] == ["gcloud", "pubsub", "subscriptions", "add-iam-policy-binding", name]]
        assert len(reader) == 1 and {f"--member={agent}", "--role=roles/pubsub.subscriber"} <= set(reader[0])
    hold_at, hold = created[landing.dead_letter_hold_id()]
    assert f"--topic={dead_letter}" in hold and "--expiration-period=never" in hold
    publisher = [a for a in commands if a[:5] == ["gcloud", "pubsub", "topics", "add-iam-policy-binding", dead_letter]]
    assert len(publisher) == 1 and {f"--member={agent}", "--role=roles/pubsub.publisher"} <= set(publisher[0])
    first_function = min(i for i, argv in enumerate(commands) if argv[:3] == ["gcloud", "functions", "deploy"])
    assert max(i for i, _ in created.values()) < first_function and hold_at < first_function
    for name, flags in deployed().items():
        env = next(f for f in flags if f.startswith("--set-env-vars=")).split("=", 1)[1].split(",")
        assert "METRIC_LANDING=pubsub" in env, name


def test_every_create_is_guarded_by_a_describe_of_the_same_resource():
    """A first deploy: each create comes right after the lookup of the same resource, and tables
    are created only IF NOT EXISTS. A bare create added to the script fails here."""
    commands = dry_run()
    made = [i for i, argv in enumerate(commands) if creates(argv)]
    assert len(made) >= len(Topics().all()) + 5  # topics, two holds, the landing subscriptions, ...
    for i in made:
        argv = commands[i]
        if "query" in argv:
            assert argv[-1].startswith("CREATE TABLE IF NOT EXISTS "), argv[-1][:80]
            continue
        guard = guard_of(argv)
        assert commands[i - 1][:len(guard)] == guard, (argv[:6], commands[i - 1][:6])


def test_a_second_run_updates_instead_of_creating():
    """Every resource there already: nothing is created again; subscriptions and the scheduler
    job are updated to what the script says, with the same settings a create would give them."""
    first, second = dry_run(), dry_run("--existing")
    assert not [argv for argv in second if creates(argv) and "query" not in argv]
    for argv in first:
        if not creates(argv) or "query" in argv or argv[:3] == ["gcloud", "pubsub", "topics"] or argv[0] == "bq":
            continue
        group, name = argv[:argv.index("create")], guard_of(argv)[-1]
        updated = [a for a in second if a[:len(group)] == group and a[len(group)] == "update" and name in a]
        assert len(updated) == 1, argv[:6]
        dropped = {"--topic=" + a.split("=", 1)[1] for a in argv if a.startswith("--topic=")}
        if argv[:3] == ["gcloud", "scheduler", "jobs"]:
            dropped = set()  # a job's target topic can be updated; a subscription's cannot
        assert set(argv) - {"create"} - dropped == set(updated[0]) - {"update"}, argv[:6]
    # the rest (functions, IAM bindings, table DDL, rules and indexes) is the same in both runs
    def steady(cmds: list[list[str]]) -> list[list[str]]:
        return [a for a in cmds if "describe" not in a[:4] and "create" not in a[:5] and "update" not in a[:5]
                and not (a[0] == "bq" and ("mk" in a or "show" in a))]
    assert steady(first) == steady(second)


def test_the_functions_dead_letter_keeps_what_it_gets_for_a_week():
    """A topic without a subscription drops what is published to it: the functions' dead letter
    has a pull subscription that holds messages 7 days, and the Pub/Sub agent may move them."""
    commands = dry_run()
    dead_letter = Topics().dead_letter
    agent = "serviceAccount:service-<project-number>@gcp-sa-pubsub.iam.gserviceaccount.com"
    hold = [a for a in commands if a[:5] == ["gcloud", "pubsub", "subscriptions", "create", hold_id("dead_letter")]]
    assert len(hold) == 1 and hold_id("dead_letter") == f"{dead_letter}-hold"
    assert {f"--topic={dead_letter}", "--message-retention-duration=7d", "--expiration-period=never"} <= set(hold[0])
    publisher = [a for a in commands if a[:5] == ["gcloud", "pubsub", "topics", "add-iam-policy-binding", dead_letter]]
    assert len(publisher) == 1 and {f"--member={agent}", "--role=roles/pubsub.publisher"} <= set(publisher[0])
    for name in PUBSUB_FUNCTIONS:
        sub = f"<subscription-of-{name}>"
        policy = [a for a in commands if a[:5] == ["gcloud", "pubsub", "subscriptions", "update", sub]]
        assert len(policy) == 1 and f"--dead-letter-topic={dead_letter}" in policy[0]
        assert f"--max-delivery-attempts={DEAD_LETTER_AFTER_ATTEMPTS}" in policy[0]
        reader = [a for a in commands if a[:5] == ["gcloud", "pubsub", "subscriptions", "add-iam-policy-binding", sub]]
        assert len(reader) == 1 and {f"--member={agent}", "--role=roles/pubsub.subscriber"} <= set(reader[0])


def test_the_links_backfill_runs_on_request_after_everything_is_deployed():
    plain, asked = dry_run(), dry_run("--backfill-links")
    backfill = [i for i, a in enumerate(asked) if a[:1] == ["env"] and a[-2:] == ["-m", "localdev.backfill_links"]]
    assert not [a for a in plain if "localdev.backfill_links" in a]
    last_function = max(i for i, a in enumerate(asked) if a[:3] == ["gcloud", "functions", "deploy"])
    assert len(backfill) == 1 and backfill[0] > last_function
    env = {"GOOGLE_CLOUD_PROJECT=demo-check", "METRIC_STORE=bigquery", "METRIC_DATASET=offers_metrics"}
    assert env <= set(asked[backfill[0]])
