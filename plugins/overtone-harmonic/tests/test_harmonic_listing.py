"""Listing plugins must not import torch: the package's public names load lazily."""

import subprocess
import sys


def test_listing_plugins_does_not_import_torch():
    code = "import overtone, sys; overtone.registry(); assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_public_names_still_import():
    from overtone_harmonic import HarmonicLoss, chunked_harmonic_loss, harmonic_logits

    assert callable(HarmonicLoss) and callable(chunked_harmonic_loss) and callable(harmonic_logits)
