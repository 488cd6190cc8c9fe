"""Sign-up, sign-in and sign-out pages."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
