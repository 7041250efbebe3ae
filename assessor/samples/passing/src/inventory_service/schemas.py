"""The API's request and response schemas: checked at the edge and published in the contract."""

from inventory_service.validation import Field, Schema

SKU_PATTERN = r"[A-Z0-9][A-Z0-9-]{2,31}"
RESERVATION_ID_PATTERN = r"res_[0-9a-f]{16}"
TIMESTAMP_PATTERN = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"

# ------------------------------------------------------------------ requests

CREATE_ITEM = Schema("CreateItemRequest", {
    "sku": Field(str, pattern=SKU_PATTERN),
    "name": Field(str, min_length=1, max_length=120),
    "quantity": Field(int, minimum=0, maximum=1_000_000),
})

CREATE_RESERVATION = Schema("CreateReservationRequest", {
    "sku": Field(str, pattern=SKU_PATTERN),
    "quantity": Field(int, minimum=1, maximum=1_000),
    "hold_seconds": Field(int, required=False, minimum=30, maximum=3_600),
})

# ------------------------------------------------------------------ responses

ITEM = Schema("Item", {
    "sku": Field(str, pattern=SKU_PATTERN),
    "name": Field(str, max_length=120),
    "on_hand": Field(int, minimum=0),
    "reserved": Field(int, minimum=0),
    "available": Field(int, minimum=0),
    "created_at": Field(str, pattern=TIMESTAMP_PATTERN),
})

ITEM_PAGE = Schema("ItemPage", {
    "items": Field(list, items=ITEM),
    "next_after": Field(str, nullable=True, pattern=SKU_PATTERN),
})

RESERVATION = Schema("Reservation", {
    "id": Field(str, pattern=RESERVATION_ID_PATTERN),
    "sku": Field(str, pattern=SKU_PATTERN),
    "quantity": Field(int, minimum=1),
    "status": Field(str, choices=("held", "confirmed", "cancelled", "expired")),
    "created_at": Field(str, pattern=TIMESTAMP_PATTERN),
    "expires_at": Field(str, pattern=TIMESTAMP_PATTERN),
})

ERROR_DETAIL = Schema("ErrorDetail", {
    "field": Field(str),
    "problem": Field(str),
})

ERROR = Schema("Error", {
    "error": Field(dict, schema=Schema("ErrorBody", {
        "code": Field(str, pattern=r"[a-z_]+"),
        "message": Field(str, min_length=1),
        "details": Field(list, items=ERROR_DETAIL),
    })),
})

HEALTH = Schema("Health", {
    "status": Field(str, choices=("ok",)),
    "version": Field(str),
})

ALL = (CREATE_ITEM, CREATE_RESERVATION, ITEM, ITEM_PAGE, RESERVATION, ERROR, HEALTH)
