"""Sites from the shipped planning data, and the round trip from a user region to a site."""
from __future__ import annotations

from typing import Mapping, Union

import numpy as np

from mlsysim_opt.errors import InputError, UnknownNameError
from mlsysim_opt.planning.problem import Offer, SiteLimit, SiteSpec


def resolve_site(entry: Union[str, SiteLimit, SiteSpec], hours: int, start_utc_hour: int = 0) -> SiteSpec:
    """A :class:`SiteSpec`: given, or built from the shipped site of that name (its metro, PUE, hourly
    carbon over ``hours`` from ``start_utc_hour``, and every cloud offer there)."""
    if isinstance(entry, SiteSpec):
        return entry
    from mlsysim_opt.planning import data
    limits = entry if isinstance(entry, SiteLimit) else SiteLimit(site=entry)
    site = data.site(limits.site)
    if limits.carbon_csv is not None and limits.carbon_profile is not None:
        raise InputError(f"sites[{limits.site}]", "carbon_csv and carbon_profile", "may give one of them, not both")
    if limits.carbon_csv is not None:
        profile = data.load_carbon_csv(limits.carbon_csv)
        hourly = np.resize(np.asarray(profile.hourly_g_per_kwh, dtype=float), hours)
    else:
        profile = data.carbon_profile(limits.carbon_profile or site.carbon_profile)
        hourly = profile.utc_hours(hours, start_utc_hour)
    offers = []
    for offer in data.offers().values():
        if offer.site != site.key:
            continue
        prices = {kind: offer.usd_per_accelerator_hour(kind) for kind in offer.usd_per_instance_hour}
        band = offer.spot_interruption
        offers.append(Offer(accelerator=offer.accelerator, usd_per_accelerator_hour=prices,
                            spot_interruption=None if band is None else band[1],
                            source=f"{offer.key} ({offer.date_seen})"))
    return SiteSpec(name=site.key, metro=site.metro, pue=site.pue,
                    carbon_g_per_kwh=tuple(float(v) for v in hourly),
                    grid=site.grid, offers=offers, owned=list(limits.owned),
                    max_accelerators=limits.max_accelerators, max_power_kw=limits.max_power_kw,
                    max_spot_accelerators=limits.max_spot_accelerators,
                    carbon_reconstruction=profile.reconstruction, carbon_source=", ".join(profile.sources))


def rtt_between(user: str, site: SiteSpec, overrides: Mapping[str, float]) -> float:
    """Round trip in ms from user region ``user`` (a metro) to ``site``: the problem's override for
    ``"user~site"`` or ``"user~metro"`` (either order), else the shipped measurement."""
    for a, b in ((user, site.name), (user, site.metro)):
        for key in (f"{a}~{b}", f"{b}~{a}"):
            if key in overrides:
                return float(overrides[key])
    from mlsysim_opt.planning import data
    try:
        return float(data.rtt_ms(user, site.metro))
    except (InputError, UnknownNameError) as exc:
        raise InputError(f"rtt_ms[{user}~{site.name}]", user, f"is unknown ({exc})",
                         f"give it in the problem's rtt_ms, e.g. {{'{user}~{site.name}': 40}}") from None

