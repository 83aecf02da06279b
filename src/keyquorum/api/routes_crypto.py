"""Cryptographic routes; each takes one item or ``{"batch": [...]}``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from keyquorum.api.runner import read_json
from keyquorum.api.services import Services, services

router = APIRouter(prefix="/v1")


@router.post("/keys/{name:path}/encrypt")
async def encrypt(request: Request, name: str, s: Services = Depends(services)) -> dict[str, Any]:
    body = await read_json(request, s.core)
    return await s.runner.run_items(request, "encrypt", name, body,
                                    lambda ctx, item: s.operations.encrypt(ctx, name, item))


@router.post("/keys/{name:path}/decrypt")
async def decrypt_named(request: Request, name: str,
                        s: Services = Depends(services)) -> dict[str, Any]:
    body = await read_json(request, s.core)
    return await s.runner.run_items(
        request, "decrypt", name, body,
        lambda ctx, item: s.operations.decrypt(ctx, item, expected_key=name))


@router.post("/decrypt")
async def decrypt(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    body = await read_json(request, s.core)
    return await s.runner.run_items(request, "decrypt", None, body,
                                    lambda ctx, item: s.operations.decrypt(ctx, item))


@router.post("/reencrypt")
async def reencrypt(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    body = await read_json(request, s.core)
    return await s.runner.run_items(request, "reencrypt", None, body,
                                    lambda ctx, item: s.operations.reencrypt(ctx, item))


@router.post("/keys/{name:path}/datakey")
async def datakey(request: Request, name: str, s: Services = Depends(services)) -> dict[str, Any]:
    body = await read_json(request, s.core, allow_empty=True)
    return await s.runner.run_items(request, "datakey", name, body,
                                    lambda ctx, item: s.operations.datakey(ctx, name, item))


@router.post("/keys/{name:path}/sign")
async def sign(request: Request, name: str, s: Services = Depends(services)) -> dict[str, Any]:
    body = await read_json(request, s.core)
    return await s.runner.run_items(request, "sign", name, body,
                                    lambda ctx, item: s.operations.sign(ctx, name, item))


@router.post("/keys/{name:path}/verify")
async def verify(request: Request, name: str, s: Services = Depends(services)) -> dict[str, Any]:
    body = await read_json(request, s.core)
    return await s.runner.run_items(request, "verify", name, body,
                                    lambda ctx, item: s.operations.verify(ctx, name, item))


@router.post("/keys/{name:path}/mac")
async def mac(request: Request, name: str, s: Services = Depends(services)) -> dict[str, Any]:
    body = await read_json(request, s.core)
    return await s.runner.run_items(request, "mac", name, body,
                                    lambda ctx, item: s.operations.mac(ctx, name, item))


@router.post("/keys/{name:path}/verify-mac")
async def verify_mac(request: Request, name: str,
                     s: Services = Depends(services)) -> dict[str, Any]:
    body = await read_json(request, s.core)
    return await s.runner.run_items(request, "mac", name, body,
                                    lambda ctx, item: s.operations.verify_mac(ctx, name, item))


@router.post("/keys/{name:path}/decapsulate")
async def decapsulate(request: Request, name: str,
                      s: Services = Depends(services)) -> dict[str, Any]:
    body = await read_json(request, s.core)
    return await s.runner.run_items(request, "decapsulate", name, body,
                                    lambda ctx, item: s.operations.decapsulate(ctx, name, item))


@router.post("/random")
async def random(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    body = await read_json(request, s.core)
    return await s.runner.run_items(request, "random", None, body,
                                    lambda ctx, item: s.operations.random(ctx, item))
