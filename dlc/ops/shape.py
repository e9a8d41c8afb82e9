"""Shape operators: Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Expand, Shape, Size, Identity, ConstantOfShape, Range, EyeLike."""
