#!/usr/bin/env python3
# Writes src/api/v1-openapi.json, the OpenAPI 3.1 document of the management API (/api/v1), which
# the server serves at /api/v1/openapi.json and scripts/fuzz-api.sh checks the server against.
# Edit this file, not the JSON:  python3 scripts/openapi-v1.py
import json
import os
P = "application/problem+json"
def problem(desc): return {"description": desc, "content": {P: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
def ok(desc, ref, headers=None):
    r = {"description": desc, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}
    if headers: r["headers"] = headers
    return r
ERR = {
 "400": problem("The request is malformed (a parameter or the body does not decode)."),
 "401": problem("No token, or an unknown, revoked or expired one."),
 "403": problem("The token's role may not do this."),
 "404": problem("No such flag or environment."),
 "409": problem("The change conflicts with what is stored, or is refused (a protected environment needs review)."),
 "412": problem("If-Match named a version that is no longer the current one."),
 "422": problem("The values do not pass validation; `field` names the one at fault."),
}
def errs(*codes): return {c: ERR[c] for c in codes}
key = {"name": "key", "in": "path", "required": True, "description": "The flag's key.", "schema": {"type": "string", "minLength": 1}}
env = {"name": "environment", "in": "path", "required": True, "description": "The environment's key.", "schema": {"type": "string", "minLength": 1}}
page = {"name": "page", "in": "query", "description": "Page number, from 0.", "schema": {"type": "integer", "minimum": 0, "maximum": 1000000}}
limit = {"name": "limit", "in": "query", "description": "Items per page (1 to 200, default 50).", "schema": {"type": "integer", "minimum": 1, "maximum": 200}}
etag = {"ETag": {"description": "The version of the rules, for If-Match.", "schema": {"type": "string"}}}
doc = {
 "openapi": "3.1.0",
 "info": {"title": "Gatehouse management API", "version": "1.0.0",
   "description": "Flags, their access per environment, segments, environments, release stages, the audit log and access tokens. Members are managed in the admin UI only. "
   "Send an access token (`gatehouse tokens create`, or a personal token from Settings) as `Authorization: Bearer gth_…`. "
   "A call acts with the token's role (a personal token: its member's role now) and is authorized and recorded in the audit log "
   "exactly as the same action in the admin UI. Errors are problem details (RFC 9457) whose `type` is `urn:gatehouse:problem:<kind>`: "
   "bad-request, unauthorized, forbidden, not-found, conflict, refused, version-mismatch, invalid, limit-reached, too-many-requests (429), busy (503), corrupt-data and internal (500)."},
 "servers": [{"url": "/"}],
 "security": [{"bearerAuth": []}],
 "paths": {
  "/api/v1/flags": {
   "get": {"operationId": "listFlags", "summary": "List flags", "tags": ["Flags"],
     "parameters": [
       {"name": "q", "in": "query", "description": "Text in the key or name.", "schema": {"type": "string"}},
       {"name": "stageId", "in": "query", "description": "Only flags in this release stage.", "schema": {"type": "integer"}},
       {"name": "ownerId", "in": "query", "description": "Only flags this member owns.", "schema": {"type": "integer"}},
       {"name": "archived", "in": "query", "description": "Archived flags instead of live ones.", "schema": {"type": "boolean"}},
       page, limit],
     "responses": {"200": ok("One page of flags, newest first.", "FlagPage"), **errs("400", "401", "403")}},
   "post": {"operationId": "createFlag", "summary": "Create a flag", "tags": ["Flags"],
     "description": "Creates a flag in the first release stage with No one in every environment. With an `Idempotency-Key`, a repeat of the same request by the same token within 24 hours creates nothing and answers as the first time did (header `Idempotent-Replayed: true`); the key sent with another request is refused (422).",
     "parameters": [{"name": "Idempotency-Key", "in": "header", "description": "Makes retries safe: 1 to 255 ASCII characters.", "schema": {"type": "string", "minLength": 1, "maxLength": 255}}],
     "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewFlag"}}}},
     "responses": {"201": ok("The created flag.", "FlagWithAccess", {"Location": {"description": "The flag's URL.", "schema": {"type": "string"}}}), **errs("400", "401", "403", "409", "422")}},
  },
  "/api/v1/flags/{key}": {
   "parameters": [key],
   "get": {"operationId": "getFlag", "summary": "A flag with its access in every environment", "tags": ["Flags"],
     "responses": {"200": ok("The flag.", "FlagWithAccess"), **errs("400", "401", "403", "404")}},
   "patch": {"operationId": "updateFlag", "summary": "Change a flag's name, description, owner or type", "tags": ["Flags"],
     "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FlagUpdate"}}}},
     "responses": {"200": ok("The flag as stored now.", "FlagWithAccess"), **errs("400", "401", "403", "404", "409", "422")}},
  },
  "/api/v1/flags/{key}/archive": {
   "parameters": [key],
   "post": {"operationId": "archiveFlag", "summary": "Archive a flag (it is no longer served)", "tags": ["Flags"],
     "responses": {"200": ok("The flag as stored now.", "FlagWithAccess"), **errs("400", "401", "403", "404", "409", "422")}}},
  "/api/v1/flags/{key}/restore": {
   "parameters": [key],
   "post": {"operationId": "restoreFlag", "summary": "Bring an archived flag back", "tags": ["Flags"],
     "responses": {"200": ok("The flag as stored now.", "FlagWithAccess"), **errs("400", "401", "403", "404", "409", "422")}}},
  "/api/v1/flags/{key}/access/{environment}": {
   "parameters": [key, env],
   "get": {"operationId": "getAccess", "summary": "Who has access to a flag in an environment", "tags": ["Access"],
     "responses": {"200": ok("The current rules and their version (also the ETag).", "Access", etag), **errs("400", "401", "403", "404")}},
   "put": {"operationId": "putAccess", "summary": "Replace who has access to a flag in an environment", "tags": ["Access"],
     "description": "Stores the rules as the next version. With `If-Match` naming the version read (its ETag), a change made meanwhile refuses this one (412).",
     "parameters": [{"name": "If-Match", "in": "header", "description": "The ETag of the version the change starts from.", "schema": {"type": "string"}}],
     "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AccessRules"}}}},
     "responses": {"200": ok("The rules as stored now.", "Access", etag), **errs("400", "401", "403", "404", "409", "412", "422")}},
  },
  "/api/v1/flags/{key}/config/{environment}": {
   "parameters": [key, env],
   "get": {"operationId": "getConfig", "summary": "A flag's remote config in an environment", "tags": ["Remote config"],
     "responses": {"200": ok("The variants and their version (also the ETag).", "Config", etag), **errs("400", "401", "403", "404")}},
   "put": {"operationId": "putConfig", "summary": "Replace a flag's remote config in an environment", "tags": ["Remote config"],
     "description": "Stores the variants as the next version. With `If-Match` naming the version read (its ETag), a change made meanwhile refuses this one (412).",
     "parameters": [{"name": "If-Match", "in": "header", "description": "The ETag of the version the change starts from.", "schema": {"type": "string"}}],
     "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object", "required": ["variants"], "additionalProperties": False, "properties": {
        "variants": {"type": "array", "items": {"$ref": "#/components/schemas/ConfigVariant"}}}}}}},
     "responses": {"200": ok("The config as stored now.", "Config", etag), **errs("400", "401", "403", "404", "409", "412", "422")}},
  },
  "/api/v1/flags/{key}/stage": {
   "parameters": [key],
   "post": {"operationId": "moveStage", "summary": "Move a flag to a release stage, or preview the move", "tags": ["Flags"],
     "description": "The stage's default access rules apply in the environments where it has them (as in the admin UI). `changes` lists what the move replaces, per environment; with `dryRun` nothing is changed.",
     "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object", "required": ["stageId"], "additionalProperties": False, "properties": {
        "stageId": {"type": "integer"}, "dryRun": {"type": "boolean"}}}}}},
     "responses": {"200": ok("What the move changes (or changed) and the flag.", "StageMoveResult"), **errs("400", "401", "403", "404", "409", "422")}}},
  "/api/v1/flags/{key}/access/{environment}/grant": {
   "parameters": [key, env],
   "post": {"operationId": "grantAccess", "summary": "Give one company, user or segment access", "tags": ["Access"],
     "description": "Adds the grantee to the rules as they are stored (no If-Match needed: the change is made on the current version, in one transaction). Rules that give everyone access already, or that are not a list, are refused (409).",
     "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Grantee"}}}},
     "responses": {"200": ok("The rules as stored now.", "Access", etag), **errs("400", "401", "403", "404", "409", "422")}}},
  "/api/v1/flags/{key}/access/{environment}/revoke": {
   "parameters": [key, env],
   "post": {"operationId": "revokeAccess", "summary": "Take one company's, user's or segment's access away", "tags": ["Access"],
     "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Grantee"}}}},
     "responses": {"200": ok("The rules as stored now.", "Access", etag), **errs("400", "401", "403", "404", "409", "422")}}},
  "/api/v1/export": {"get": {"operationId": "exportConfiguration", "summary": "The whole configuration as one document", "tags": ["Configuration"],
     "description": "Environments, release stages, segments and flags with their access rules and remote config, as `gatehouse export` writes it (format `gatehouse/1`).",
     "responses": {"200": ok("The document.", "ConfigDocument"), **errs("401", "403")}}},
  "/api/v1/import": {"post": {"operationId": "importConfiguration", "summary": "Make the configuration match a document", "tags": ["Configuration"],
     "description": "Checks the whole document first, then applies every change in one transaction, each authorized as the token (an editor cannot change stages or environments). What the document leaves out is kept. With `dryRun` nothing is written. A document that does not pass lists every problem (422, `problems`).",
     "parameters": [{"name": "dryRun", "in": "query", "description": "Only list the changes.", "schema": {"type": "boolean"}}],
     "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ConfigDocument"}}}},
     "responses": {"200": ok("The changes, in words.", "ImportResult"), **errs("400", "401", "403", "404", "409", "422")}}},
  "/api/v1/segments": {"get": {"operationId": "listSegments", "summary": "Segments", "tags": ["Segments"],
     "responses": {"200": ok("Every segment with its conditions and the flags that use it.", "SegmentList"), **errs("401", "403")}}},
  "/api/v1/segments/{key}": {"put": {"operationId": "putSegment", "summary": "Create or replace a segment", "tags": ["Segments"],
     "description": "Creates the segment (201) or replaces its conditions (200); a name or description left out keeps the stored one (a new segment is named by its key). Every flag that uses it is served the new conditions at once.",
     "parameters": [{"name": "key", "in": "path", "required": True, "description": "The segment's key.", "schema": {"type": "string", "minLength": 1}}],
     "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SegmentBody"}}}},
     "responses": {"200": ok("The segment as stored.", "Segment"), "201": ok("The segment as stored.", "Segment"), **errs("400", "401", "403", "409", "422")}}},
  "/api/v1/companies": {"get": {"operationId": "listCompanies", "summary": "Companies applications reported", "tags": ["Companies"],
     "parameters": [
       {"name": "q", "in": "query", "description": "Text in the id or name.", "schema": {"type": "string"}},
       {"name": "environment", "in": "query", "description": "The environment's key (default production).", "schema": {"type": "string"}},
       page, limit],
     "responses": {"200": ok("One page of companies.", "CompanyPage"), **errs("400", "401", "403", "404")}}},
  "/api/v1/companies/{id}/access": {"get": {"operationId": "checkCompanyAccess", "summary": "Which flags a company gets, and why", "tags": ["Companies"],
     "parameters": [
       {"name": "id", "in": "path", "required": True, "description": "The company's id.", "schema": {"type": "string", "minLength": 1}},
       {"name": "environment", "in": "query", "description": "The environment's key (default production).", "schema": {"type": "string"}}],
     "responses": {"200": ok("Every served flag with the decision and its reason.", "AccessCheck"), **errs("400", "401", "403", "404", "422")}}},
  "/api/v1/users": {"get": {"operationId": "listUsers", "summary": "Users applications reported", "tags": ["Users"],
     "parameters": [
       {"name": "q", "in": "query", "description": "Text in the id, name or e-mail.", "schema": {"type": "string"}},
       {"name": "environment", "in": "query", "description": "The environment's key (default production).", "schema": {"type": "string"}},
       page, limit],
     "responses": {"200": ok("One page of users.", "CompanyPage"), **errs("400", "401", "403", "404")}}},
  "/api/v1/users/{id}/access": {"get": {"operationId": "checkUserAccess", "summary": "Which flags a user gets, and why", "tags": ["Users"],
     "parameters": [
       {"name": "id", "in": "path", "required": True, "description": "The user's id.", "schema": {"type": "string", "minLength": 1}},
       {"name": "environment", "in": "query", "description": "The environment's key (default production).", "schema": {"type": "string"}}],
     "responses": {"200": ok("Every served flag with the decision and its reason.", "UserAccessCheck"), **errs("400", "401", "403", "404", "422")}}},
  "/api/v1/environments": {"get": {"operationId": "listEnvironments", "summary": "Environments", "tags": ["Settings"],
     "responses": {"200": ok("Every environment, in their order.", "EnvironmentList"), **errs("401", "403")}}},
  "/api/v1/stages": {"get": {"operationId": "listStages", "summary": "Release stages", "tags": ["Settings"],
     "responses": {"200": ok("Every release stage, in their order.", "StageList"), **errs("401", "403")}},
   "post": {"operationId": "addStage", "summary": "Add a release stage (admins)", "tags": ["Settings"],
     "description": "Adds a stage after the last one; the colour defaults to #64748b.",
     "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/StageBody"}}}},
     "responses": {"201": ok("The stage as stored.", "Stage"), **errs("400", "401", "403", "409", "422")}}},
  "/api/v1/stages/{id}": {"patch": {"operationId": "updateStage", "summary": "Rename or recolour a release stage (admins)", "tags": ["Settings"],
     "parameters": [{"name": "id", "in": "path", "required": True, "description": "The stage's id.", "schema": {"type": "integer"}}],
     "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/StageBody"}}}},
     "responses": {"200": ok("The stage as stored.", "Stage"), **errs("400", "401", "403", "404", "409", "422")}}},
  "/api/v1/audit": {"get": {"operationId": "listAudit", "summary": "The audit log, newest first", "tags": ["Audit"],
     "parameters": [
       {"name": "actor", "in": "query", "description": "Exactly this actor (an e-mail address, `service token NAME`, `command line`).", "schema": {"type": "string"}},
       {"name": "subject", "in": "query", "description": "Text in the subject (`flag new-checkout`).", "schema": {"type": "string"}},
       {"name": "from", "in": "query", "description": "Entries at or after this time (epoch ms).", "schema": {"type": "integer"}},
       {"name": "to", "in": "query", "description": "Entries at or before this time (epoch ms).", "schema": {"type": "integer"}},
       page, limit],
     "responses": {"200": ok("One page of entries.", "AuditPage"), **errs("400", "401", "403")}}},
  "/api/v1/tokens": {"get": {"operationId": "listTokens", "summary": "Access tokens", "tags": ["Tokens"],
     "description": "An admin sees every token; anyone else their own personal tokens.",
     "responses": {"200": ok("The tokens, newest first (never the tokens themselves).", "TokenList"), **errs("401", "403")}}},
  "/api/v1/tokens/{prefix}": {"delete": {"operationId": "revokeToken", "summary": "Revoke a token", "tags": ["Tokens"],
     "description": "Its owner or an admin revokes it; it is refused at once, on every server.",
     "parameters": [{"name": "prefix", "in": "path", "required": True, "description": "The token's prefix as listed (or the whole token).", "schema": {"type": "string", "minLength": 1}}],
     "responses": {"204": {"description": "Revoked."}, **errs("400", "401", "403", "404", "409", "422")}}},
 },
 "components": {
  "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "description": "An access token: gth_pat_… (personal) or gth_svc_… (service)."}},
  "schemas": {
   "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
     "type": {"type": "string", "description": "urn:gatehouse:problem:<kind>"}, "title": {"type": "string"},
     "status": {"type": "integer"}, "detail": {"type": "string"}, "field": {"type": "string", "description": "The parameter or field at fault."}}},
   "StageRef": {"type": "object", "required": ["id", "name"], "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}},
   "Flag": {"type": "object", "required": ["key", "name", "description", "stage", "ownerId", "type", "archived", "createdAt", "updatedAt"], "properties": {
     "key": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"},
     "stage": {"$ref": "#/components/schemas/StageRef"}, "ownerId": {"type": ["integer", "null"]},
     "type": {"type": "string", "enum": ["temporary", "permanent"]}, "archived": {"type": "boolean"},
     "createdAt": {"type": "integer", "description": "epoch ms"}, "updatedAt": {"type": "integer", "description": "epoch ms"}}},
   "FlagWithAccess": {"allOf": [{"$ref": "#/components/schemas/Flag"}, {"type": "object", "required": ["access"], "properties": {
     "access": {"type": "array", "items": {"$ref": "#/components/schemas/Access"}}}}]},
   "FlagPage": {"type": "object", "required": ["items", "total", "page", "limit"], "properties": {
     "items": {"type": "array", "items": {"$ref": "#/components/schemas/Flag"}}, "total": {"type": "integer"},
     "page": {"type": "integer"}, "limit": {"type": "integer"}}},
   "NewFlag": {"type": "object", "required": ["key"], "additionalProperties": False, "properties": {
     "key": {"type": "string", "description": "Letters, digits, `-` and `_`; unique regardless of case."},
     "name": {"type": "string", "description": "Defaults to the key."}, "description": {"type": "string"},
     "type": {"type": "string", "enum": ["temporary", "permanent"]}, "ownerId": {"type": ["integer", "null"]}}},
   "FlagUpdate": {"type": "object", "additionalProperties": False, "properties": {
     "name": {"type": "string"}, "description": {"type": "string"},
     "ownerId": {"type": ["integer", "null"], "description": "null clears the owner."},
     "type": {"type": "string", "enum": ["temporary", "permanent"]}}},
   "AccessRules": {"type": "object", "required": ["mode"], "description": "No one, everyone, or (some) the listed companies, users and segments and each rule (conditions AND-ed, then a sticky percentage).", "properties": {
     "mode": {"type": "string", "enum": ["noOne", "everyone", "some"]},
     "companies": {"type": "array", "items": {"type": "string"}}, "users": {"type": "array", "items": {"type": "string"}},
     "segments": {"type": "array", "items": {"type": "string"}},
     "rules": {"type": "array", "items": {"type": "object", "properties": {
        "conditions": {"type": "array", "items": {"type": "object", "required": ["kind"], "properties": {"kind": {"type": "string"}}}},
        "rolloutPercentage": {"type": "number", "minimum": 0, "maximum": 100},
        "rolloutAttribute": {"type": "string", "enum": ["company", "user"]}}}}}},
   "Access": {"type": "object", "required": ["environment", "rules", "version"], "properties": {
     "environment": {"type": "string"}, "rules": {"$ref": "#/components/schemas/AccessRules"},
     "version": {"type": "integer", "description": "0: never set (No one)."}}},
   "ConfigVariant": {"type": "object", "required": ["key"], "description": "A config value and who gets it here; the default variant goes to everyone else with access.", "properties": {
     "key": {"type": "string"}, "payload": {}, "companies": {"type": "array", "items": {"type": "string"}},
     "users": {"type": "array", "items": {"type": "string"}}, "segments": {"type": "array", "items": {"type": "string"}},
     "isDefault": {"type": "boolean"}}},
   "Config": {"type": "object", "required": ["environment", "variants", "version"], "properties": {
     "environment": {"type": "string"}, "variants": {"type": "array", "items": {"$ref": "#/components/schemas/ConfigVariant"}},
     "version": {"type": "integer", "description": "0: never set."}}},
   "StageMoveResult": {"type": "object", "required": ["applied", "changes", "flag"], "properties": {
     "applied": {"type": "boolean"},
     "changes": {"type": "array", "items": {"type": "object", "required": ["environment", "from", "to"], "properties": {
        "environment": {"type": "string"}, "from": {"$ref": "#/components/schemas/AccessRules"}, "to": {"$ref": "#/components/schemas/AccessRules"}}}},
     "flag": {"$ref": "#/components/schemas/FlagWithAccess"}}},
   "Segment": {"type": "object", "required": ["key", "name", "description", "conditions", "usedBy"], "properties": {
       "key": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"},
       "conditions": {"type": "array", "items": {"type": "object"}}, "usedBy": {"type": "array", "items": {"type": "string"}}}},
   "SegmentList": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Segment"}}}},
   "SegmentBody": {"type": "object", "required": ["conditions"], "additionalProperties": False, "properties": {
       "name": {"type": "string"}, "description": {"type": "string"},
       "conditions": {"type": "array", "description": "AND-ed. `{\"kind\": \"companyAttribute\", \"attribute\": \"plan\", \"operator\": \"IS\", \"values\": [\"enterprise\"]}` or `{\"kind\": \"companyList\", \"companies\": [\"acme\"]}`.",
         "items": {"type": "object", "required": ["kind"], "properties": {"kind": {"type": "string", "enum": ["companyAttribute", "companyList"]}}}}}},
   "StageBody": {"type": "object", "additionalProperties": False, "properties": {
       "name": {"type": "string", "description": "Unique among the stages."}, "color": {"type": "string", "description": "# and six hex digits."}}},
   "CompanyPage": {"type": "object", "required": ["items", "total", "page", "limit"], "properties": {
     "items": {"type": "array", "items": {"type": "object", "required": ["id", "name", "attributes", "firstSeen", "lastSeen"], "properties": {
       "id": {"type": "string"}, "name": {"type": ["string", "null"]}, "attributes": {"type": "object"},
       "firstSeen": {"type": "integer"}, "lastSeen": {"type": "integer"}}}},
     "total": {"type": "integer"}, "page": {"type": "integer"}, "limit": {"type": "integer"}}},
   "AccessCheck": {"type": "object", "required": ["company", "environment", "flags"], "properties": {
     "company": {"type": "string"}, "environment": {"type": "string"},
     "flags": {"type": "array", "items": {"type": "object", "required": ["key", "name", "enabled", "reason", "missingContext"], "properties": {
       "key": {"type": "string"}, "name": {"type": "string"}, "enabled": {"type": "boolean"}, "reason": {"type": "string"},
       "missingContext": {"type": "array", "items": {"type": "string"}}}}}}},
   "UserAccessCheck": {"type": "object", "required": ["user", "environment", "flags"], "properties": {
     "user": {"type": "string"}, "environment": {"type": "string"},
     "flags": None}},
   "Environment": {"type": "object", "required": ["key", "name", "isProduction", "requiredApprovals"], "properties": {
     "key": {"type": "string"}, "name": {"type": "string"}, "isProduction": {"type": "boolean"}, "requiredApprovals": {"type": "integer"}}},
   "EnvironmentList": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Environment"}}}},
   "Stage": {"type": "object", "required": ["id", "name", "color", "position"], "properties": {
     "id": {"type": "integer"}, "name": {"type": "string"}, "color": {"type": "string"}, "position": {"type": "integer"}}},
   "StageList": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Stage"}}}},
   "AuditEntry": {"type": "object", "required": ["id", "at", "actor", "action", "subjectType", "subject", "environment", "before", "after"], "properties": {
     "id": {"type": "integer"}, "at": {"type": "integer"}, "actor": {"type": "string"}, "action": {"type": "string"},
     "subjectType": {"type": "string"}, "subject": {"type": "string"}, "environment": {"type": ["string", "null"]},
     "before": {}, "after": {}}},
   "AuditPage": {"type": "object", "required": ["items", "total", "page", "limit"], "properties": {
     "items": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEntry"}}, "total": {"type": "integer"},
     "page": {"type": "integer"}, "limit": {"type": "integer"}}},
   "Token": {"type": "object", "required": ["prefix", "kind", "name", "memberEmail", "role", "createdBy", "createdAt", "expiresAt", "revokedAt"], "properties": {
     "prefix": {"type": "string"}, "kind": {"type": "string", "enum": ["personal", "service"]}, "name": {"type": "string"},
     "memberEmail": {"type": ["string", "null"]}, "role": {"type": "string", "enum": ["admin", "editor", "viewer"]},
     "createdBy": {"type": "string"}, "createdAt": {"type": "integer"}, "expiresAt": {"type": ["integer", "null"]}, "revokedAt": {"type": ["integer", "null"]}}},
   "Grantee": {"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False, "properties": {
     "company": {"type": "string", "minLength": 1}, "user": {"type": "string", "minLength": 1}, "segment": {"type": "string", "minLength": 1}}},
   "ConfigDocument": {"type": "object", "required": ["format"], "description": "The format `gatehouse/1` (see the README's Flags as code).", "properties": {
     "format": {"type": "string"}, "environments": {"type": "array"}, "stages": {"type": "array"}, "segments": {"type": "array"}, "flags": {"type": "array"}}},
   "ImportResult": {"type": "object", "required": ["applied", "changes"], "properties": {
     "applied": {"type": "boolean"}, "changes": {"type": "array", "items": {"type": "string"}}}},
   "TokenList": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Token"}}}},
  }}}
# A user's check lists its flags as a company's does.
schemas = doc["components"]["schemas"]
schemas["UserAccessCheck"]["properties"]["flags"] = schemas["AccessCheck"]["properties"]["flags"]
open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "api", "v1-openapi.json"), "w").write(json.dumps(doc, indent=2) + "\n")
