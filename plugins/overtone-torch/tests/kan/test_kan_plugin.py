"""Registration: the components are listed, and listing them imports no torch."""

import json
import os
import subprocess
import sys


def test_listing_shows_kan_and_fourier_regression_without_importing_torch():
    code = ("import json, sys; from overtone.cli import main\n"
            "try:\n    main(['plugins', '--json'])\nexcept SystemExit:\n    pass\n"
            "print(json.dumps({'torch': 'torch' in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ}).stdout
    *listing, last = out.strip().splitlines()
    assert json.loads(last) == {"torch": False}
    components = {(c["kind"], c["name"]) for c in json.loads("\n".join(listing))["components"]}
    assert {("model", "kan"), ("task", "fourier-regression")} <= components


def test_declared_defaults_are_the_factories_defaults(registry):
    """The listing's defaults and the classes' keyword defaults are one truth."""
    import inspect

    for kind, name in (("model", "kan"), ("task", "fourier-regression")):
        component = registry.get(kind, name)
        signature = inspect.signature(component.load())
        for key, param in component.params.items():
            default = signature.parameters[key].default
            declared = getattr(param, "default", param)
            assert list(default) == declared if isinstance(default, tuple) else default == declared, (name, key)
