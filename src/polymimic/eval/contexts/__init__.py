"""Stored evaluation contexts (initial states), one JSON file per task and split."""
