"""The new-experiment form's text fields become the API's request body; the API validates it."""

from __future__ import annotations

import pytest

from functions.api.http.bodies import validate
from functions.console import forms
from functions.core.errors import Unprocessable
from functions.models.experiments import CreateExperiment


def _form(**fields: str) -> dict[str, str]:
    base = {k: "" for k in forms.FIELDS}
    return {**base, **forms.DEFAULTS, "name": "n", "statement": "s", "primaryMetric": "revenue", **fields}


def test_the_primary_kpis_historical_skewness_reaches_the_api():
    body = forms.definition(_form(primarySkewness=" 6.18 "))
    assert body["kpis"][0]["historicalSkewness"] == 6.18
    assert validate(CreateExperiment, body).kpis[0].historicalSkewness == 6.18
    assert "historicalSkewness" not in forms.definition(_form())["kpis"][0]


@pytest.mark.parametrize(("fields", "where"), [({"primarySkewness": "a lot"}, "kpis"),
                                               ({"primarySkewness": "-1"}, "kpis.0"),
                                               ({"primarySkewness": "3", "primaryType": "PROPORTION"}, "kpis.0")])
def test_a_bad_skewness_is_the_apis_coded_422(fields, where):
    with pytest.raises(Unprocessable) as info:
        validate(CreateExperiment, forms.definition(_form(**fields)))
    assert info.value.status == 422 and info.value.details["errors"][0]["field"].startswith(where)
