"""The loop IR: statements, schedules, lowering passes, printer and interpreter."""
