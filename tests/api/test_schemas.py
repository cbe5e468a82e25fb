"""The JSON API's models: documented, and governor models that cannot hold an identity."""

from __future__ import annotations

import inspect

import pytest
from pydantic import BaseModel

from api import schemas

IDENTITY_WORDS = ("ip", "mac", "host", "label", "device", "address", "email")

MODELS = [
    model
    for _, model in inspect.getmembers(schemas, inspect.isclass)
    if issubclass(model, BaseModel) and model.__module__ == schemas.__name__
]
GOVERNOR_MODELS = [model for model in MODELS if model.__name__.startswith("Governor")]


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_every_api_model_says_what_it_is(model: type[BaseModel]) -> None:
    assert model.__doc__ and model.__doc__.strip()


@pytest.mark.parametrize("model", GOVERNOR_MODELS, ids=lambda model: model.__name__)
def test_governor_models_have_no_identity_field(model: type[BaseModel]) -> None:
    for name in model.model_fields:
        words = name.lower().split("_")
        assert not any(word in IDENTITY_WORDS for word in words), f"{model.__name__}.{name}"


def test_there_are_governor_models_to_check() -> None:
    assert len(GOVERNOR_MODELS) >= 5
