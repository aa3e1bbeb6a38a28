"""Transcript review for support leads: list, read, correct, chart, export."""
