"""Figures and HTML pages of gradlab reports."""
