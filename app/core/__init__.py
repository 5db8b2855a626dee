"""Pure-Python domain core: dictionary, validation, ID numbers, division codes, clock. No Qt, no I/O
beyond reading forms/."""
