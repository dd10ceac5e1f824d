"""The calibration bundle: everything a calibrated classifier needs, written and read with a
manifest of hashes, its versions, and the production extras it carries."""
