"""Closing the loop: `monitor` (drift on logged traffic), `label-next` and `add-span`."""
