"""The SDK has one exception per stable error code of the server (``ALL_ERRORS``), with
the same HTTP status, and no code the server does not have."""

from __future__ import annotations

import pytest

from keyquorum.client import errors as sdk_errors
from keyquorum.errors import ALL_ERRORS, StorageUnavailable


def _server_codes() -> dict[str, int]:
    return {cls.code: cls.status for cls in ALL_ERRORS}


@pytest.mark.parametrize(("code", "status"), sorted(_server_codes().items()))
def test_sdk_raises_its_own_class_for_every_server_code(code: str, status: int) -> None:
    error = sdk_errors.error_from_body({"error": {"code": code, "message": "m"}},
                                       status=status, request_id="r-1")
    assert type(error) is not sdk_errors.KeyquorumAPIError, f"no SDK class for {code}"
    assert error.code_name == code and error.http_status == status


def test_sdk_knows_no_code_the_server_does_not_answer() -> None:
    sdk_codes = {cls.code_name: cls.http_status for cls in vars(sdk_errors).values()
                 if isinstance(cls, type) and issubclass(cls, sdk_errors.KeyquorumAPIError)
                 and cls.code_name}
    assert sdk_codes == _server_codes()


def test_storage_unavailable_is_a_503_in_both() -> None:
    assert (StorageUnavailable.code, StorageUnavailable.status) == ("storage_unavailable", 503)
    error = sdk_errors.error_from_body(
        {"error": {"code": "storage_unavailable", "message": StorageUnavailable().message}},
        status=None, request_id=None)
    assert isinstance(error, sdk_errors.StorageUnavailableError) and error.status == 503
