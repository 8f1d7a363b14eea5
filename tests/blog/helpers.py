"""Steps many blog tests share: logging in through the form, getting an API token."""

from __future__ import annotations

import base64

from flask.testing import FlaskClient

from .factories import PASSWORD


def log_in(client: FlaskClient, username: str, password: str = PASSWORD) -> None:
    response = client.post("/auth/login", data={"username": username, "password": password})
    assert response.status_code == 302
    assert response.headers["Location"] == "/index"


def basic_auth_header(username: str, password: str = PASSWORD) -> dict[str, str]:
    credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


def token_header(client: FlaskClient, username: str) -> dict[str, str]:
    response = client.post("/api/tokens", headers=basic_auth_header(username))
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.json['token']}"}
