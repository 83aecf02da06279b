"""``GET /v1/sys/backup``: the encrypted snapshot of the whole store, streamed.

Audited before the first byte leaves (fail closed); the snapshot is read after
that record is stored, so a backup holds the record of its own making.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from keyquorum.api.runner import Audited
from keyquorum.api.services import Services, services
from keyquorum.backup.format import DEFAULT_SEGMENT_SIZE, check_segment_size
from keyquorum.backup.writer import BackupStream, start_backup
from keyquorum.errors import InvalidRequest
from keyquorum.service.context import RequestContext

router = APIRouter(prefix="/v1/sys")
MEDIA_TYPE = "application/vnd.keyquorum.backup"


@router.get("/backup")
async def backup(request: Request,
                 segment_size: int = Query(DEFAULT_SEGMENT_SIZE, ge=16, le=64 * 1024 * 1024),
                 s: Services = Depends(services)) -> StreamingResponse:
    """The backup file (docs/FORMAT.md section 6); ``segment_size`` is for tests and tuning."""
    def work(_ctx: RequestContext) -> Audited:
        try:
            check_segment_size(segment_size)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        made = start_backup(s.core, segment_size=segment_size)
        return Audited(made, None, None,
                       detail={"backup_id": made.backup_id, "canaries": str(made.canaries)})

    made: BackupStream = await s.runner.run(request, "sys:backup", None, work,
                                            permission="sys:backup",
                                            in_thread=True)
    return StreamingResponse(made.chunks, media_type=MEDIA_TYPE, headers={
        "content-disposition": f'attachment; filename="keyquorum-{made.backup_id}.kqbk"',
        "x-keyquorum-backup-id": made.backup_id})


__all__ = ["router"]
