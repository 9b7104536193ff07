"""Losses that own their output head."""
