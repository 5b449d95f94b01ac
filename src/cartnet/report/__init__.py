"""Reports people would rather look at than read: maps and charts rendered offline."""
