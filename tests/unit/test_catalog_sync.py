"""Repo catalog versions reach the store once and are never edited there."""
import logging

from shared.services import catalog as catalog_service
from tests.factories import memory_services


def test_a_repo_version_changed_under_the_same_number_is_named_and_the_stored_one_stays_in_force(caplog):
    svc = memory_services()
    shipped = list(svc.catalog.versions.values())
    catalog_service.sync(svc, shipped)
    edited = [a.model_copy(update={"dailyCap": 1}) if a.id == "leads.reassign" and a.version == 1 else a
              for a in shipped]
    with caplog.at_level(logging.ERROR, logger="shared.services.catalog"):
        rebuilt = catalog_service.sync(svc, edited)
    assert rebuilt.versions[("leads.reassign", 1)].dailyCap != 1
    named = [r.getMessage() for r in caplog.records if "differs from the stored" in r.getMessage()]
    assert named == ["catalog/actions/leads.reassign.v1.json differs from the stored leads.reassign v1, which stays "
                     "in force: give the change a new version to deploy it"]


def test_an_unchanged_repo_catalog_syncs_silently(caplog):
    svc = memory_services()
    shipped = list(svc.catalog.versions.values())
    catalog_service.sync(svc, shipped)
    with caplog.at_level(logging.ERROR, logger="shared.services.catalog"):
        catalog_service.sync(svc, shipped)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
