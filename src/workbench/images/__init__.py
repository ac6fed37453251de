"""Examples in: zips, folders and bytes read safely, decoded and validated, streamed."""
