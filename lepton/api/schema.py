"""drf-spectacular hooks for the OpenAPI schema at /api/v1/schema/."""

NOT_FOUND = {
    "description": "Not found: an unknown object, one out of your reach, or a page past the end of a list.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


TOO_MANY = {
    "description": "Throttled: the token's rate limit (API_RATE_LIMIT) is spent; the detail says when to retry.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def document_common_errors(result, generator, request, public):
    """Every operation may answer 404 and 429 with the API's error body; say so where a view's schema left it out."""
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].setdefault("404", NOT_FOUND)
                operation["responses"].setdefault("429", TOO_MANY)
    return result
