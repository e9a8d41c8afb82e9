"""Loop IR passes, one per module; each takes a PrimFunc and returns a new one."""
