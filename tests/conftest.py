"""Test configuration shared by every test directory (helpers live in tests/helpers.py)."""

import os
import sys

# tests/helpers.py is imported as ``helpers`` from test files in any subdirectory.
sys.path.insert(0, os.path.dirname(__file__))
