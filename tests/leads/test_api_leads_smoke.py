def test_created_lead_is_listed(api):
    created = api.post("/api/v1/leads", {"name": "Jane Doe", "email": "jane@acme.com"}, format="json")
    assert created.status_code == 201, created.content
    listed = api.get("/api/v1/leads").json()
    assert [lead["email"] for lead in listed["results"]] == ["jane@acme.com"]
    assert listed["count"] == 1
