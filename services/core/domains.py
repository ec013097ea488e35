"""The 15 SDG-aligned domains, as stored in the database (lowercase snake case)."""

from __future__ import annotations

DOMAINS: tuple[str, ...] = (
    "poverty_reduction",
    "education_access",
    "healthcare_improvement",
    "environmental_protection",
    "food_security",
    "mental_health_wellbeing",
    "community_building",
    "disaster_response",
    "digital_inclusion",
    "human_rights",
    "clean_water_sanitation",
    "sustainable_energy",
    "gender_equality",
    "biodiversity_conservation",
    "elder_care",
)
