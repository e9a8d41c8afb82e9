"""Data movement: Concat, Split, Slice, Pad, Tile, DepthToSpace, SpaceToDepth, Trilu, ReverseSequence."""
