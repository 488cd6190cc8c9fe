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
