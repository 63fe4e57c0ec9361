package kernel

import (
	"fmt"
	"strings"

	"github.com/google/nftables"
	"github.com/nsrouter/nsrouter/plan"
	"github.com/nsrouter/nsrouter/topology"
)

var hookNames = map[nftables.ChainHook]string{
	*nftables.ChainHookPrerouting:  "prerouting",
	*nftables.ChainHookInput:       "input",
	*nftables.ChainHookForward:     "forward",
	*nftables.ChainHookOutput:      "output",
	*nftables.ChainHookPostrouting: "postrouting",
}

// NodeRules renders a node's table as nft -f reads it, for the script; it
// is a plan.RuleTexts. Each rule's text is the comment the rule carries,
// written so that nft builds exactly the expressions nsrouter sends.
func NodeRules(lab string, n *topology.Node, fw *topology.Firewall, nat *topology.NAT) []plan.ChainText {
	spec := NodeTable(lab, n, fw, nat)
	var out []plan.ChainText
	for _, c := range spec.Chains {
		policy := "accept"
		if c.Policy == nftables.ChainPolicyDrop {
			policy = "drop"
		}
		ct := plan.ChainText{Name: c.Name,
			Head: fmt.Sprintf("type %s hook %s priority %d; policy %s;", c.Type, hookNames[*c.Hook], *c.Priority, policy)}
		for _, r := range c.Rules {
			ct.Rules = append(ct.Rules, plan.RuleLine{Rule: nftSyntax(r.Text), Comment: r.Text})
		}
		out = append(out, ct)
	}
	return out
}

// nftSyntax turns a rule's comment text into nft syntax: the log prefix is
// single-quoted in the comment, which nft does not read.
func nftSyntax(text string) string {
	before, rest, ok := strings.Cut(text, "log prefix '")
	if !ok {
		return text
	}
	prefix, after, _ := strings.Cut(rest, "'")
	return before + fmt.Sprintf("log prefix %q", prefix) + after
}
