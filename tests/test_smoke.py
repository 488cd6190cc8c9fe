async def test_health_answers(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_reports_current_migrations(client):
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"


async def test_metrics_expose_outbox_lag(client):
    await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert "vibethink_outbox_lag_seconds" in response.text
    assert 'vibethink_http_requests_total{method="GET",route="/healthz",status="200"}' in response.text


async def test_a_body_that_is_not_json_gets_a_clear_error(client):
    response = await client.post(
        "/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_json"
    assert "not valid JSON" in response.json()["error"]["message"]


async def test_an_unknown_path_is_a_404_in_the_error_format(client):
    response = await client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not Found"}}


async def test_the_api_documentation_is_served_without_any_cdn(client):
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    script = await client.get("/docs-assets/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert len(script.content) > 100_000
    spec = await client.get("/openapi.json")
    assert "/api/v1/celebrities" in spec.json()["paths"]
