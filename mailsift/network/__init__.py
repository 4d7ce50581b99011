"""Sender authentication and DNS checks: SPF, DKIM, DMARC, DNS lists, reverse DNS, HELO, sender domain.

`gather(msg, config)` does all the network work of one message concurrently within `dns.timeout`
and returns `NetworkVerdicts`; the scanner puts them in the check context, where the `eval:`
checks of `mailsift.rules.checks.network_*` read them (they never do DNS themselves), and
`authentication_results` turns them into the Authentication-Results header the milter adds.
"""

from mailsift.network.authresults import authentication_results, authserv_id
from mailsift.network.gather import gather
from mailsift.network.verdicts import NETWORK_KEY, NetworkVerdicts

__all__ = ["NETWORK_KEY", "NetworkVerdicts", "authentication_results", "authserv_id", "gather"]
