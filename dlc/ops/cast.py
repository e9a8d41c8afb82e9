"""Cast, CastLike, BitCast and conversions between dtypes."""
