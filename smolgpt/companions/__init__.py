"""Companion code of the chapters: one module per chapter, its plan, tables and commands."""
