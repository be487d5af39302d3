"""Institutions, their locations and the capacity history of each location."""
