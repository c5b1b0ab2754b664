"""Typer sub-apps, one module per noun. They parse input, call one service, present output.

Modules here import only typer and the standard library at top level: heavy imports
(sqlmodel, pendulum, rich tables) happen inside command bodies to keep start-up fast.
"""
