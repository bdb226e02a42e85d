-- +goose Up
-- Custom OIDC issuers an organization's owners register for their own
-- projects (as PyPI's organization_oidc_issuers). PostgreSQL dialect; keep in
-- step with ../sqlite/00013_organization_issuers.sql. NULL: an issuer an
-- administrator registered for the whole index. An organization's issuer
-- goes with it, and its publishers with the issuer.
ALTER TABLE oidc_issuers ADD COLUMN organization_id BIGINT REFERENCES organizations (id) ON DELETE CASCADE;

-- +goose Down
ALTER TABLE oidc_issuers DROP COLUMN organization_id;
