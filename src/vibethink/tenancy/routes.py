"""Tenancy API: tenants, members, API keys."""

from fastapi import APIRouter

router = APIRouter(tags=["tenancy"])
