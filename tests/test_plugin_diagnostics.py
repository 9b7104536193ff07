"""Plugin load failures: file and line, tracebacks under OVERTONE_DEBUG, pluggy's whole message."""

from __future__ import annotations

import textwrap

import pytest
from overtone.plugins import load_plugins
from overtone.registry import Registry


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder on sys.path; ``write(name, source)`` adds a plugin module to it."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, source: str):
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(source).lstrip())
        return path

    return write


def load(name: str, **environ: str) -> Registry:
    return Registry(load_plugins(use_entry_points=False, modules=[name], environ=environ))


def test_import_failure_names_file_and_line(plugin_dir, capsys):
    path = plugin_dir("diag_broken", """
        from overtone import hookimpl

        import no_such_dependency_xyz
    """)
    reg = load("diag_broken")
    assert reg.failures == [
        "plugin 'diag_broken': import failed: ModuleNotFoundError: No module named "
        f"'no_such_dependency_xyz' (at {path}:3)"
    ]
    assert capsys.readouterr().err == ""


def test_syntax_error_names_file_and_line(plugin_dir):
    path = plugin_dir("diag_syntax", "x = 1\ndef f(:\n    pass\n")
    (failure,) = load("diag_syntax").failures
    assert failure.startswith("plugin 'diag_syntax': import failed: SyntaxError: ")
    assert failure.endswith(f"(at {path}:2)")


def test_debug_prints_the_traceback(plugin_dir, capsys):
    path = plugin_dir("diag_raises", """
        def helper():
            raise RuntimeError("plugin setup failed")

        helper()
    """)
    reg = load("diag_raises", OVERTONE_DEBUG="1")
    assert reg.failures == [
        f"plugin 'diag_raises': import failed: RuntimeError: plugin setup failed (at {path}:2)"
    ]
    err = capsys.readouterr().err
    assert err.startswith("overtone: plugin 'diag_raises' failed to import:\nTraceback (most recent call last):")
    assert f'File "{path}", line 4' in err and f'File "{path}", line 2, in helper' in err
    assert err.rstrip().endswith("RuntimeError: plugin setup failed")


def test_bad_hookimpl_shows_pluggys_whole_message(plugin_dir):
    path = plugin_dir("diag_extra_arg", """
        from overtone import hookimpl


        @hookimpl
        def overtone_losses(config):
            return []
    """)
    assert load("diag_extra_arg").failures == [
        "plugin 'diag_extra_arg': invalid hook implementation: Plugin 'diag_extra_arg' for hook "
        "'overtone_losses'; hookimpl definition: overtone_losses(config); Argument(s) {'config'} are "
        f"declared in the hookimpl but can not be found in the hookspec (at {path}:4); overtone hooks "
        "take no arguments"
    ]


def test_unknown_hook_suggests_the_right_name(plugin_dir):
    path = plugin_dir("diag_typo", """
        from overtone import hookimpl


        @hookimpl
        def overtone_loss():
            return []
    """)
    (failure,) = load("diag_typo").failures
    assert failure == (
        "plugin 'diag_typo': invalid hook implementation: unknown hook 'overtone_loss' in plugin "
        f"<module 'diag_typo' from '{path}'> (at {path}:4); did you mean overtone_losses?"
    )


def test_missing_hookimpl_gets_a_warning(plugin_dir):
    path = plugin_dir("diag_unmarked", """
        from overtone import Component, hookimpl


        def overtone_analyzers():
            return [Component("analyzer", "a", "math:sqrt")]


        def overtone_lossez():
            return []


        @hookimpl
        def overtone_models():
            return [Component("model", "m", "math:sqrt")]
    """)
    reg = load("diag_unmarked")
    assert reg.failures == [] and reg.names("model") == ["m"] and reg.names("analyzer") == []
    assert reg.problems == [
        f"plugin 'diag_unmarked': overtone_analyzers() ({path}:4) has no @overtone.hookimpl decorator, "
        "so overtone never calls it; decorate it with @hookimpl",
        f"plugin 'diag_unmarked': overtone_lossez() ({path}:8) is not an overtone hook and has no "
        "@hookimpl; did you mean overtone_losses?",
    ]


def test_plugins_module_that_cannot_be_imported():
    reg = load("diag_not_there.plugin")
    assert reg.failures == [
        "plugin 'diag_not_there.plugin': OVERTONE_PLUGINS names 'diag_not_there.plugin', which is not "
        "importable (No module named 'diag_not_there'); the module must be on PYTHONPATH or installed"
    ]
