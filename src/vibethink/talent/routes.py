"""Talent API: celebrities, contracts, twin configuration."""

from fastapi import APIRouter

router = APIRouter(tags=["talent"])
