"""Cloud Functions entry points: one decorated function per trigger, no business logic.

HTTP (JSON APIs, routes inside): holdouts, experiments, analytics, rollouts, ledger, assign; console (web UI).
Pub/Sub: kpi_events, fraud_signals, spillover_events, exposures, sweep (Cloud Scheduler tick).
Firestore: experiment_written (offerExperiments/{id} writes).
"""

import functions_framework

from functions import logs
from functions.adapters import ledger_keys
from functions.api import analytics as analytics_api
from functions.api import assign as assign_api
from functions.api import experiments as experiments_api
from functions.api import holdouts as holdouts_api
from functions.api import ledger as ledger_api
from functions.api import rollouts as rollouts_api
from functions.console import app as console_app
from functions.events import experiment_written as experiment_written_event
from functions.events import exposures as exposures_event
from functions.events import fraud as fraud_event
from functions.events import kpi as kpi_event
from functions.events import spillover as spillover_event
from functions.events import sweep as sweep_event

logs.configure()
ledger_keys.require_configured()  # in the cloud: no configured signing key, no start


@functions_framework.http
def holdouts(request):
    return holdouts_api.router.handle(request)


@functions_framework.http
def experiments(request):
    return experiments_api.router.handle(request)


@functions_framework.http
def analytics(request):
    return analytics_api.router.handle(request)


@functions_framework.http
def rollouts(request):
    return rollouts_api.router.handle(request)


@functions_framework.http
def ledger(request):
    return ledger_api.router.handle(request)


@functions_framework.http
def assign(request):
    return assign_api.router.handle(request)


@functions_framework.http
def console(request):
    return console_app.handle(request)


@functions_framework.cloud_event
def kpi_events(cloud_event):
    kpi_event.handle(cloud_event)


@functions_framework.cloud_event
def fraud_signals(cloud_event):
    fraud_event.handle(cloud_event)


@functions_framework.cloud_event
def spillover_events(cloud_event):
    spillover_event.handle(cloud_event)


@functions_framework.cloud_event
def exposures(cloud_event):
    exposures_event.handle(cloud_event)


@functions_framework.cloud_event
def sweep(cloud_event):
    sweep_event.handle(cloud_event)


@functions_framework.cloud_event
def experiment_written(cloud_event):
    experiment_written_event.handle(cloud_event)
