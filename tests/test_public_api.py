"""The deliberate public surface: sorted re-exports, a light import, typing markers."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.resources
import json
import subprocess
import sys
import types

import pytest

import runnerhub
from runnerhub import errors

# Modules ``import runnerhub`` must not load: the emulator, the CLI and optional extras.
HEAVY = ("runnerhub.sandbox", "runnerhub.cli", "runnerhub._cli", "redis", "rich")


def test_all_is_sorted_and_unique() -> None:
    """runnerhub.__all__ is sorted and has no duplicates."""
    assert runnerhub.__all__ == sorted(runnerhub.__all__)
    assert len(set(runnerhub.__all__)) == len(runnerhub.__all__)


def test_every_exported_name_resolves() -> None:
    """Each name in runnerhub.__all__ is an attribute of the package, none private."""
    for name in runnerhub.__all__:
        assert not name.startswith("_")
        assert getattr(runnerhub, name) is not None


def test_core_names_are_exported() -> None:
    """The providers, models, policy and error module are part of the public surface."""
    expected = {
        "Capability",
        "CreatedRunner",
        "CredentialField",
        "GitHubProvider",
        "KubiyaProvider",
        "RateLimit",
        "RegistrationToken",
        "RetryPolicy",
        "Runner",
        "RunnerHealth",
        "RunnerKind",
        "RunnerProvider",
        "RunnerStatus",
        "Secret",
        "SodaProvider",
        "SupportsDescription",
        "SupportsHealth",
        "SupportsLabels",
        "SupportsManifests",
        "SupportsOperations",
        "SupportsRateLimits",
        "SupportsRegistrationTokens",
        "SupportsStats",
        "VendorOption",
        "errors",
    }
    assert expected <= set(runnerhub.__all__)


def test_star_import_gives_exactly_all() -> None:
    """``from runnerhub import *`` binds exactly the names in __all__."""
    namespace: dict[str, object] = {}
    exec("from runnerhub import *", namespace)  # noqa: S102 - fixed source text
    assert set(namespace) - {"__builtins__"} == set(runnerhub.__all__)


@pytest.mark.parametrize("module", ["runnerhub.errors", "runnerhub.models", "runnerhub.provider"])
def test_submodule_all_sorted_and_resolving(module: str) -> None:
    """The public submodules' __all__ are sorted and every name resolves."""
    mod = importlib.import_module(module)
    names = list(mod.__all__)
    assert names == sorted(names)
    for name in names:
        assert hasattr(mod, name)


def test_errors_all_lists_every_error_class() -> None:
    """runnerhub.errors.__all__ names every RunnerHubError subclass defined there."""
    defined = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.RunnerHubError)
    }
    assert defined == set(errors.__all__)


def test_import_is_light() -> None:
    """A fresh ``import runnerhub`` loads neither the sandbox, the CLI, redis nor rich."""
    code = "import json, sys, runnerhub; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(  # noqa: S603 - fixed arguments, our own interpreter
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(result.stdout)
    assert "runnerhub" in loaded
    heavy = [m for m in loaded if m in HEAVY or m.startswith(tuple(h + "." for h in HEAVY))]
    assert heavy == []


def test_py_typed_is_shipped() -> None:
    """The package carries the PEP 561 py.typed marker."""
    assert importlib.resources.files("runnerhub").joinpath("py.typed").is_file()


def test_version_matches_metadata() -> None:
    """runnerhub.__version__ agrees with the installed distribution's version."""
    assert runnerhub.__version__ == importlib.metadata.version("runnerhub")


def test_typing_check_runs() -> None:
    """The mypy-checked typing module also holds at runtime, protocols and capabilities alike."""
    from tests import typing_check

    assert isinstance(typing_check, types.ModuleType)
    soda, kubiya, github = typing_check.providers()
    for provider in (soda, kubiya, github):
        assert isinstance(provider, runnerhub.RunnerProvider)
    assert (soda.provider, kubiya.provider, github.provider) == ("soda", "kubiya", "github")
    assert soda.capabilities < kubiya.capabilities
    assert runnerhub.Capability.LABELS in github.capabilities
    assert all(value is not None for value in typing_check.capabilities())


def test_narrow_protocol_has_no_vendor_extras() -> None:
    """Soda implements no capability it lacks: no stub makes isinstance lie."""
    soda = runnerhub.SodaProvider("key-id", "key-secret")
    assert isinstance(soda, runnerhub.SupportsHealth)
    for protocol in (
        runnerhub.SupportsDescription,
        runnerhub.SupportsManifests,
        runnerhub.SupportsOperations,
        runnerhub.SupportsLabels,
        runnerhub.SupportsRegistrationTokens,
    ):
        assert not isinstance(soda, protocol)


def test_registry_names_every_exported_provider() -> None:
    """The vendor registry resolves each vendor to the provider class the package exports."""
    from runnerhub.vendors import VENDORS, provider_class, vendor_names

    assert vendor_names() == ("github", "kubiya", "soda")
    exported = {
        "github": runnerhub.GitHubProvider,
        "kubiya": runnerhub.KubiyaProvider,
        "soda": runnerhub.SodaProvider,
    }
    for name in vendor_names():
        cls = provider_class(name)
        assert cls is exported[name]
        assert cls.provider == VENDORS[name].name == name
        assert cls.title
        assert cls.default_limits
        assert all(f.env for f in cls.credentials)
    with pytest.raises(KeyError):
        provider_class("gitlab")


def test_registry_loads_no_vendor_module() -> None:
    """The registry module stands alone (stdlib and attrs only); its entries are import paths."""
    code = (
        "import importlib.util, json, sys, runnerhub.vendors as v; "
        "[sys.modules.pop(m) for m in list(sys.modules) if m.startswith('runnerhub')]; "
        "spec = importlib.util.spec_from_file_location('registry', v.__file__); "
        "registry = importlib.util.module_from_spec(spec); spec.loader.exec_module(registry); "
        "print(json.dumps([sorted(m for m in sys.modules if m.startswith('runnerhub')), "
        "[[e.name, e.provider, e.sandbox] for e in registry.VENDORS.values()]]))"
    )
    result = subprocess.run(  # noqa: S603 - fixed arguments, our own interpreter
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    modules, entries = json.loads(result.stdout)
    assert modules == []
    for name, provider, sandbox in entries:
        assert provider.startswith(f"runnerhub.vendors.{name}:")
        assert sandbox.startswith(f"runnerhub.sandbox._{name}:")
