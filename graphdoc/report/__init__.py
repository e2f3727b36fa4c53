"""Rendering scan and fix results for people (rich text)."""
