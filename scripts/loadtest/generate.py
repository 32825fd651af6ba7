#!/usr/bin/env python3
"""Workload for scripts/loadtest.sh (deterministic: the same files on every run).

  generate.py flags OUTDIR
      Writes OUTDIR/flags-100.json (30 segments and the first 100 flags) and
      OUTDIR/flags-1000.json (the same segments and all 1,000 flags), both `gatehouse import`
      documents (format gatehouse/1), plus OUTDIR/context.json describing the measured company.

  generate.py manyflags OUTDIR COUNT
      Writes OUTDIR/flags-COUNT.json: the same segments and COUNT flags made the same way
      (flag-0000 … ), for measuring the admin pages with a large configuration.

  generate.py companies BASE_URL PUBLISHABLE_KEY [COUNT]
      Sends COUNT (default 100,000) companies with a few attributes each to BASE_URL/bulk,
      1,000 items per request, and prints how long it took.

The flags mix what real configurations hold: company lists of up to 1,000 ids, users, segments
(attribute conditions and company lists of up to 1,000 ids), attribute conditions on the company
and the user, percentage rollouts, flag dependencies and remote config. Rules target the
production environment; the other environments keep their stage defaults.
"""

import json
import random
import sys
import time
import urllib.request

COMPANIES = 100_000
FLAGS = 1_000
SEGMENTS = 30
STAGES = ["In development", "Internal", "Beta", "General availability"]
PLANS = ["free", "starter", "pro", "enterprise"]
REGIONS = ["eu", "us", "apac"]
INDUSTRIES = ["saas", "retail", "finance", "health", "education", "media"]
# The company and user every measured request carries.
MEASURED_COMPANY = "company-000042"
MEASURED_USER = "user-42"


def company_id(n):
    return f"company-{n:06d}"


def company_attributes(n):
    """The attributes /bulk stores for company n (also what flags' conditions test)."""
    r = random.Random(n)
    return {
        "name": f"Company {n}",
        "plan": PLANS[r.randrange(len(PLANS))],
        "region": REGIONS[r.randrange(len(REGIONS))],
        "industry": INDUSTRIES[r.randrange(len(INDUSTRIES))],
        "employees": r.randrange(1, 5000),
        "beta": r.random() < 0.2,
    }


def company_list(r, size, include_measured):
    ids = {company_id(r.randrange(COMPANIES)) for _ in range(size)}
    if include_measured:
        ids.add(MEASURED_COMPANY)
    return sorted(ids)


def attribute_condition(r):
    choice = r.randrange(6)
    if choice == 0:
        return {"kind": "companyAttribute", "attribute": "plan", "operator": "IS",
                "values": [r.choice(PLANS)]}
    if choice == 1:
        return {"kind": "companyAttribute", "attribute": "region", "operator": "ANY_OF",
                "values": r.sample(REGIONS, 2)}
    if choice == 2:
        return {"kind": "companyAttribute", "attribute": "employees", "operator": "GT",
                "values": [str(r.choice([10, 50, 100, 500, 1000]))]}
    if choice == 3:
        return {"kind": "companyAttribute", "attribute": "beta", "operator": "IS_TRUE", "values": []}
    if choice == 4:
        return {"kind": "companyAttribute", "attribute": "industry", "operator": "NOT_ANY_OF",
                "values": r.sample(INDUSTRIES, 2)}
    return {"kind": "userAttribute", "attribute": "email", "operator": "CONTAINS",
            "values": ["@example.com"]}


def segments(r):
    out = []
    for i in range(SEGMENTS):
        kind = i % 3
        if kind == 0:  # attribute conditions only
            conditions = [attribute_condition(r) for _ in range(r.randrange(1, 3))]
            conditions = [c for c in conditions if c["kind"] == "companyAttribute"] or [
                {"kind": "companyAttribute", "attribute": "plan", "operator": "IS", "values": ["pro"]}]
        elif kind == 1:  # a company list (up to 1,000 ids)
            conditions = [{"kind": "companyList",
                           "companies": company_list(r, r.choice([100, 500, 1000]), i % 2 == 1)}]
        else:  # both
            conditions = [
                {"kind": "companyAttribute", "attribute": "plan", "operator": "ANY_OF",
                 "values": ["pro", "enterprise"]},
                {"kind": "companyList", "companies": company_list(r, r.randrange(50, 1000), True)},
            ]
        out.append({"key": f"segment-{i:02d}", "name": f"Segment {i}",
                    "description": "load-test segment", "conditions": conditions})
    return out


def access_rules(r, i):
    """Production access rules for flag i; a mix of every kind of targeting."""
    kind = i % 10
    if kind == 0:
        return {"mode": "everyone"}
    if kind == 1:
        return {"mode": "noOne"}
    some = {"mode": "some", "companies": [], "users": [], "segments": [], "rules": []}
    if kind in (2, 9):
        size = r.choice([10, 100, 250, 500, 1000])
        some["companies"] = company_list(r, size, r.random() < 0.3)
    if kind in (3, 9):
        some["segments"] = sorted({f"segment-{r.randrange(SEGMENTS):02d}" for _ in range(r.randrange(1, 4))})
    if kind in (4, 5, 7, 8, 9):
        for _ in range(r.randrange(1, 4)):
            conditions = [attribute_condition(r) for _ in range(r.randrange(0 if kind == 8 else 1, 3))]
            if kind == 7:
                conditions.append({"kind": "segment", "segment": f"segment-{r.randrange(SEGMENTS):02d}",
                                   "membership": r.choice(["in", "notIn"])})
            if i >= 10 and i % 50 == 7:  # depends on an earlier flag (no cycles)
                conditions.append({"kind": "flagAccess", "flag": f"flag-{i - 7:04d}", "enabled": True})
            some["rules"].append({
                "conditions": conditions,
                "rolloutPercentage": r.choice([100, 100, 50, 25, 10, 12.5]),
                "rolloutAttribute": "user" if r.random() < 0.2 else "company",
            })
    if kind == 6:
        some["users"] = [f"user-{r.randrange(10_000)}" for _ in range(r.randrange(1, 20))]
        some["companies"] = company_list(r, r.randrange(1, 50), False)
    return some


def flag(r, i):
    entry = {
        "key": f"flag-{i:04d}",
        "name": f"Flag {i}",
        "description": "load-test flag",
        "stage": STAGES[i % len(STAGES)],
        "access": {"production": access_rules(r, i)},
    }
    if i % 25 == 3:
        entry["remoteConfig"] = {"production": {"variants": [
            {"key": "large", "payload": {"limit": 1000, "theme": "dark"},
             "companies": company_list(r, 20, False), "segments": ["segment-01"]},
            {"key": "default", "payload": {"limit": 10}, "isDefault": True},
        ]}}
    return entry


def write_flags(outdir):
    r = random.Random(20261125)
    segs = segments(r)
    flags = [flag(r, i) for i in range(FLAGS)]
    for name, count in (("flags-100.json", 100), ("flags-1000.json", FLAGS)):
        with open(f"{outdir}/{name}", "w") as f:
            json.dump({"format": "gatehouse/1", "segments": segs, "flags": flags[:count]}, f)
    with open(f"{outdir}/context.json", "w") as f:
        json.dump({"company": MEASURED_COMPANY, "user": MEASURED_USER}, f)


def write_many_flags(outdir, count):
    r = random.Random(20261125)
    segs = segments(r)
    flags = [flag(r, i) for i in range(count)]
    with open(f"{outdir}/flags-{count}.json", "w") as f:
        json.dump({"format": "gatehouse/1", "segments": segs, "flags": flags}, f)


def send_companies(base_url, key, count):
    started = time.monotonic()
    batch = 1000
    for start in range(0, count, batch):
        items = [{"type": "company", "companyId": company_id(n), "attributes": company_attributes(n)}
                 for n in range(start, min(start + batch, count))]
        request = urllib.request.Request(
            f"{base_url}/bulk", data=json.dumps(items).encode(), method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
            if response.status != 200 or answer.get("success") is not True:
                sys.exit(f"/bulk answered {response.status}: {answer}")
    elapsed = time.monotonic() - started
    print(f"seeded {count} companies in {count // batch} /bulk requests, {elapsed:.1f} s")


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "flags":
        write_flags(sys.argv[2])
    elif len(sys.argv) >= 4 and sys.argv[1] == "manyflags":
        write_many_flags(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "companies":
        count = int(sys.argv[4]) if len(sys.argv) > 4 else COMPANIES
        send_companies(sys.argv[2].rstrip("/"), sys.argv[3], count)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
