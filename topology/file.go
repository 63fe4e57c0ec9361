package topology

// The structs in this file mirror the topology file one to one. They are
// decoded strictly (see decode.go) and then resolved into the model
// (model.go); nothing else in the program reads them. The `doc` tags feed
// the JSON Schema (schema.go).

// File is the whole topology file.
type File struct {
	Pos     Pos
	Name    String        `yaml:"name" doc:"the lab's name: 1-32 of a-z, 0-9 and '-'"`
	Profile String        `yaml:"profile" doc:"settings of every lab link: default (the kernel's) or fast (IPv4 packets of up to 185,000 bytes through the stack: BIG TCP); a link's own profile wins"`
	Pools   Map[FilePool] `yaml:"pools" doc:"address pools that links and bridges without addresses draw from"`
	Nodes   Map[FileNode] `yaml:"nodes" doc:"network namespaces by name; 'host' is the namespace nsrouter runs in"`
	Groups  []FileGroup   `yaml:"groups" doc:"groups of similar nodes, NAME1 to NAMEcount, each connected to one node or bridge"`
	Links   []FileLink    `yaml:"links" doc:"veth cables between two endpoints written node:interface"`
	Uplink  *FileUplink   `yaml:"uplink" doc:"a link from a lab node to the host, masqueraded towards the host's own network"`
	Expect  []FileExpect  `yaml:"expect" doc:"what check proves"`
}

// FilePool is a range of addresses cut into one subnet per link or bridge.
type FilePool struct {
	Pos   Pos
	IPv4  String `yaml:"ipv4" doc:"IPv4 range, like 10.100.0.0/16"`
	IPv6  String `yaml:"ipv6" doc:"IPv6 range, like fd00:100::/48"`
	Size4 Int    `yaml:"ipv4-length" doc:"prefix length of each IPv4 subnet (default /31 for links, /24 for bridges)"`
	Size6 Int    `yaml:"ipv6-length" doc:"prefix length of each IPv6 subnet (default /127 for links, /64 for bridges)"`
}

// FileNode is one entry under nodes: a network namespace, or the host.
type FileNode struct {
	Pos        Pos
	Interfaces Map[FileInterface] `yaml:"interfaces" doc:"settings of this node's link ends, by interface name"`
	Bridges    Map[FileBridge]    `yaml:"bridges" doc:"Linux bridges inside this node, by name"`
	Loopback   []String           `yaml:"loopback" doc:"addresses on lo, like 10.255.0.1/32"`
	Forwarding *FileForwarding    `yaml:"forwarding" doc:"IP forwarding: makes the node a router"`
	Sysctls    Map[String]        `yaml:"sysctls" doc:"extra sysctls of the node's namespace; only net.* keys"`
	AutoRoutes Bool               `yaml:"auto-routes" doc:"compute routes to every lab subnet over the lab's routers; hand-made routes win"`
	Routes     []FileRoute        `yaml:"routes" doc:"static routes"`
	Rules      []FileRule         `yaml:"rules" doc:"policy routing rules: which packets look up which table"`
	Firewall   *FileFirewall      `yaml:"firewall" doc:"nftables filter chains of the node"`
	NAT        *FileNAT           `yaml:"nat" doc:"address translation in the node"`
}

// FileInterface holds the settings of a veth end named in a link.
type FileInterface struct {
	Pos       Pos
	Addresses []String `yaml:"addresses" doc:"address/prefix-length, IPv4 or IPv6"`
	MTU       Int      `yaml:"mtu" doc:"MTU of this end"`
	MAC       String   `yaml:"mac" doc:"hardware address, like 02:00:00:00:00:01"`
	State     String   `yaml:"state" doc:"up (default) or down"`
}

// FileBridge is a Linux bridge inside a node.
type FileBridge struct {
	Pos       Pos
	Addresses []String `yaml:"addresses" doc:"the bridge's own addresses"`
	Pool      String   `yaml:"pool" doc:"pool that gives the bridge's LAN a subnet: the bridge and every attached interface without addresses get one"`
	MTU       Int      `yaml:"mtu" doc:"MTU of the bridge"`
	Snooping  Bool     `yaml:"multicast-snooping" doc:"IGMP/MLD snooping: forward multicast only to ports that joined (default false: flood it, as a plain switch does)"`
}

// FileForwarding switches IP forwarding on in a node.
type FileForwarding struct {
	Pos  Pos
	IPv4 Bool `yaml:"ipv4" doc:"net.ipv4.ip_forward"`
	IPv6 Bool `yaml:"ipv6" doc:"net.ipv6.conf.all.forwarding"`
}

// FileRoute is a static route.
type FileRoute struct {
	Pos    Pos
	To     String `yaml:"to" doc:"destination prefix, or default"`
	Via    String `yaml:"via" doc:"gateway address on one of the node's subnets"`
	Dev    String `yaml:"dev" doc:"output interface or bridge of the node"`
	Metric Int    `yaml:"metric" doc:"route priority"`
	Table  Int    `yaml:"table" doc:"routing table number (default 254, main)"`
}

// FileRule is a policy routing rule (`ip rule`).
type FileRule struct {
	Pos      Pos
	From     String `yaml:"from" doc:"source prefix"`
	To       String `yaml:"to" doc:"destination prefix"`
	IIF      String `yaml:"iif" doc:"input interface"`
	OIF      String `yaml:"oif" doc:"output interface"`
	FwMark   Int    `yaml:"fwmark" doc:"firewall mark"`
	Priority Int    `yaml:"priority" doc:"rule priority; lower runs first"`
	Table    Int    `yaml:"table" doc:"table to look up"`
	Family   String `yaml:"family" doc:"ipv4 or ipv6, when neither from nor to says"`
}

// FileFirewall holds a node's filter chains.
type FileFirewall struct {
	Pos     Pos
	Input   *FileChain `yaml:"input" doc:"packets to the node itself"`
	Forward *FileChain `yaml:"forward" doc:"packets the node routes"`
	Output  *FileChain `yaml:"output" doc:"packets the node sends"`
}

// FileChain is a base chain: a policy and ordered rules.
type FileChain struct {
	Pos    Pos
	Policy String       `yaml:"policy" doc:"accept (default) or drop"`
	Rules  []FileFilter `yaml:"rules" doc:"rules in order; the first that matches decides"`
}

// FileFilter is one filter rule; every field set must match.
type FileFilter struct {
	Pos     Pos
	In      String   `yaml:"in" doc:"input interface"`
	Out     String   `yaml:"out" doc:"output interface"`
	Src     String   `yaml:"src" doc:"source prefix or address"`
	Dst     String   `yaml:"dst" doc:"destination prefix or address"`
	Proto   String   `yaml:"proto" doc:"tcp, udp, icmp or icmpv6"`
	SPort   String   `yaml:"sport" doc:"source port or range a-b (tcp, udp)"`
	DPort   String   `yaml:"dport" doc:"destination port or range a-b (tcp, udp)"`
	State   []String `yaml:"state" doc:"connection states: new, established, related, invalid"`
	Counter Bool     `yaml:"counter" doc:"count matching packets (always on; kept for clarity)"`
	Log     String   `yaml:"log" doc:"log matching packets with this prefix"`
	Action  String   `yaml:"action" doc:"accept, drop or reject"`
}

// FileNAT is a node's address translation.
type FileNAT struct {
	Pos         Pos
	Masquerade  []FileMasq `yaml:"masquerade" doc:"rewrite sources to the output interface's address"`
	SNAT        []FileMasq `yaml:"snat" doc:"rewrite sources to a fixed address"`
	PortForward []FilePort `yaml:"port-forward" doc:"DNAT: forward a port of this node to another address"`
}

// FileMasq is one masquerade or SNAT rule.
type FileMasq struct {
	Pos Pos
	Out String   `yaml:"out" doc:"output interface the translation applies to"`
	Src []String `yaml:"src" doc:"source prefixes to translate; required, so internal traffic is never translated by accident"`
	To  String   `yaml:"to" doc:"SNAT: the new source address"`
}

// FilePort is one port forward.
type FilePort struct {
	Pos     Pos
	Proto   String `yaml:"proto" doc:"tcp or udp"`
	Port    String `yaml:"port" doc:"port or range a-b on this node"`
	To      String `yaml:"to" doc:"node, node:interface or address to forward to"`
	ToPort  Int    `yaml:"to-port" doc:"port at the target (default: the same)"`
	In      String `yaml:"in" doc:"only for packets arriving on this interface"`
	Hairpin Bool   `yaml:"hairpin" doc:"also translate for clients on the target's own LAN (default true)"`
}

// FileLink is a veth cable between two endpoints written node:interface.
type FileLink struct {
	Pos       Pos
	Endpoints []String `yaml:"endpoints" doc:"two endpoints, node:interface; one may name a bridge"`
	Pool      String   `yaml:"pool" doc:"pool that numbers both ends when they have no addresses"`
	MTU       Int      `yaml:"mtu" doc:"MTU of both ends"`
	State     String   `yaml:"state" doc:"up (default) or down, for both ends"`
	Profile   String   `yaml:"profile" doc:"default or fast, for this link (default: the lab's profile)"`
}

// FileGroup is count similar nodes NAME1..NAMEcount, each linked to one
// node (point to point) or bridge.
type FileGroup struct {
	Pos          Pos
	Name         String          `yaml:"name" doc:"name prefix: members are NAME1, NAME2, ..."`
	Count        Int             `yaml:"count" doc:"number of members"`
	Connect      String          `yaml:"connect" doc:"node (a veth to each member) or node:bridge"`
	Pool         String          `yaml:"pool" doc:"pool numbering the members' links (not needed on a bridge with a pool)"`
	Interface    String          `yaml:"interface" doc:"each member's interface name (default eth0)"`
	DefaultRoute Bool            `yaml:"default-route" doc:"each member gets a default route via the node it connects to"`
	Forwarding   *FileForwarding `yaml:"forwarding" doc:"forwarding of every member"`
	Routes       []FileRoute     `yaml:"routes" doc:"static routes of every member"`
	Sysctls      Map[String]     `yaml:"sysctls" doc:"sysctls of every member"`
	AutoRoutes   Bool            `yaml:"auto-routes" doc:"computed routes for every member"`
	Profile      String          `yaml:"profile" doc:"default or fast, for every member's link (default: the lab's profile)"`
}

// FileUplink connects a lab node to the host's own network.
type FileUplink struct {
	Pos       Pos
	Node      String `yaml:"node" doc:"the lab node that gets the uplink"`
	Interface String `yaml:"interface" doc:"its interface name (default uplink0)"`
	Subnet    String `yaml:"subnet" doc:"the link's subnet, like 10.254.0.0/30 (host takes the first address)"`
	Out       String `yaml:"out" doc:"host interface to masquerade towards (default: the one of the host's default route)"`
}

// FileExpect is one reachability expectation that check runs.
type FileExpect struct {
	Pos    Pos
	From   String `yaml:"from" doc:"node the probe starts in"`
	To     String `yaml:"to" doc:"address, node, node:interface; with proto tcp/udp: ...:PORT"`
	Reach  Bool   `yaml:"reach" doc:"true (default) or false: the probe must fail"`
	TTL    Int    `yaml:"ttl" doc:"TTL or hop limit the reply must arrive with"`
	Proto  String `yaml:"proto" doc:"icmp (default), tcp or udp"`
	Port   Int    `yaml:"port" doc:"tcp/udp port at the target"`
	Source String `yaml:"source" doc:"tcp/udp: the source address the listener must see (node, node:interface or address)"`
	Server String `yaml:"server" doc:"tcp/udp: node[:port] where the listener runs, when it is not the owner of to (a port forward's target)"`
	Family String `yaml:"family" doc:"ipv4 or ipv6 when to names a node with both"`
}
