package topology

// The structs in this file mirror the topology file one to one. They are
// decoded strictly (see decode.go) and then resolved into the model
// (model.go); nothing else in the program reads them.

// File is the whole topology file.
type File struct {
	Pos    Pos
	Name   String        `yaml:"name"`
	Nodes  Map[FileNode] `yaml:"nodes"`
	Links  []FileLink    `yaml:"links"`
	Expect []FileExpect  `yaml:"expect"`
}

// FileNode is one entry under nodes: a network namespace, or the host.
type FileNode struct {
	Pos        Pos
	Interfaces Map[FileInterface] `yaml:"interfaces"`
	Bridges    Map[FileBridge]    `yaml:"bridges"`
	Forwarding *FileForwarding    `yaml:"forwarding"`
	Routes     []FileRoute        `yaml:"routes"`
	Firewall   *FileFirewall      `yaml:"firewall"`
}

// FileInterface holds the settings of a veth end named in a link.
type FileInterface struct {
	Pos       Pos
	Addresses []String `yaml:"addresses"`
}

// FileBridge is a Linux bridge inside a node.
type FileBridge struct {
	Pos       Pos
	Addresses []String `yaml:"addresses"`
}

// FileForwarding switches IP forwarding on in a node.
type FileForwarding struct {
	Pos  Pos
	IPv4 Bool `yaml:"ipv4"`
	IPv6 Bool `yaml:"ipv6"`
}

// FileRoute is a static route.
type FileRoute struct {
	Pos    Pos
	To     String `yaml:"to"`
	Via    String `yaml:"via"`
	Dev    String `yaml:"dev"`
	Metric Int    `yaml:"metric"`
}

// FileFirewall holds a node's filter chains.
type FileFirewall struct {
	Pos     Pos
	Forward *FileChain `yaml:"forward"`
}

// FileChain is a base chain: a policy and ordered rules.
type FileChain struct {
	Pos    Pos
	Policy String     `yaml:"policy"`
	Rules  []FileRule `yaml:"rules"`
}

// FileRule is one filter rule; every field set must match.
type FileRule struct {
	Pos    Pos
	In     String `yaml:"in"`
	Out    String `yaml:"out"`
	Src    String `yaml:"src"`
	Dst    String `yaml:"dst"`
	Action String `yaml:"action"`
}

// FileLink is a veth cable between two endpoints written node:interface.
type FileLink struct {
	Pos       Pos
	Endpoints []String `yaml:"endpoints"`
}

// FileExpect is one reachability expectation that check runs.
type FileExpect struct {
	Pos   Pos
	From  String `yaml:"from"`
	To    String `yaml:"to"`
	Reach Bool   `yaml:"reach"`
	TTL   Int    `yaml:"ttl"`
}
