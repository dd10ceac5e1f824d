"""The decision stage: threshold analysis and certification, the persisted decision policy,
conformal prediction sets, and the one ``decide`` every output goes through."""
