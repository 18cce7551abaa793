package sqs

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// AttributeValue is a message attribute (or message system attribute) as the API carries it.
// BinaryValue is base64 on both wires (JSON encodes []byte so).
type AttributeValue struct {
	DataType         string   `json:"DataType"`
	StringValue      *string  `json:"StringValue,omitempty"`
	BinaryValue      []byte   `json:"BinaryValue,omitempty"`
	StringListValues []string `json:"StringListValues,omitempty"`
	BinaryListValues [][]byte `json:"BinaryListValues,omitempty"`
}

// The headers a message carries in its stream. A message a NATS client published has none of
// them: its id derives from its stream sequence (or its Nats-Msg-Id), its other headers are
// String message attributes, and its sent time is the stream's timestamp.
const (
	hdrID         = "Sqs-Message-Id"
	hdrSent       = "Sqs-Sent-Timestamp" // Unix milliseconds; a delayed message is stored later
	hdrAttributes = "Sqs-Message-Attributes"
	// hdrAttributesLen, instead of hdrAttributes, says the first N bytes of the data are the
	// attributes' JSON: JetStream keeps at most 64 KiB of headers, and attributes may take
	// 256 KiB. Only messages with that much in attributes are stored so.
	hdrAttributesLen = "Sqs-Message-Attributes-Length"
	hdrGroup         = "Sqs-Message-Group-Id"
	hdrDedup         = "Sqs-Message-Deduplication-Id"
	hdrDLQSource     = "Sqs-Dead-Letter-Queue-Source-Arn"
	hdrTrace         = "AWSTraceHeader" // the header Flint's queue mappings already read a trace from
	hdrTraceFlint    = "X-Amzn-Trace-Id"
)

// idSpace is the namespace of message ids derived from a stream sequence: internal/esm's, so
// that a message reads with the same id through either kind of mapping.
var idSpace = uuid.MustParse("6c1c2a3e-6a0e-4f1b-9d5c-1f1e5a0e0f11")

// AttributesMD5 is SQS's MD5 of message attributes (MD5OfMessageAttributes, and of message system
// attributes): over the attributes sorted by name, each as its name, data type (both
// length-prefixed), a transport byte (1 string, 2 binary, 3 string list, 4 binary list) and its
// value (length-prefixed), lengths 4-byte big-endian. Empty when there are none.
func AttributesMD5(attrs map[string]AttributeValue) string {
	if len(attrs) == 0 {
		return ""
	}
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	slices.Sort(names)
	h := md5.New()
	put := func(b []byte) {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(b)))
		h.Write(l[:])
		h.Write(b)
	}
	for _, n := range names {
		v := attrs[n]
		put([]byte(n))
		put([]byte(v.DataType))
		switch {
		case v.StringValue != nil:
			h.Write([]byte{1})
			put([]byte(*v.StringValue))
		case v.BinaryValue != nil:
			h.Write([]byte{2})
			put(v.BinaryValue)
		case len(v.StringListValues) > 0:
			h.Write([]byte{3})
			for _, s := range v.StringListValues {
				put([]byte(s))
			}
		case len(v.BinaryListValues) > 0:
			h.Write([]byte{4})
			for _, b := range v.BinaryListValues {
				put(b)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func bodyMD5(body string) string {
	s := md5.Sum([]byte(body))
	return hex.EncodeToString(s[:])
}

var attrNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,256}$`) })

// checkAttributes validates message attributes as SQS does and returns their size (names, types
// and values count toward the message size).
func checkAttributes(attrs map[string]AttributeValue) (int, error) {
	if len(attrs) > 10 {
		return 0, errInvalidParameter("Number of message attributes [%d] exceeds the allowed maximum [10].", len(attrs))
	}
	size := 0
	for n, v := range attrs {
		ln := strings.ToLower(n)
		if !attrNameRE().MatchString(n) || strings.HasPrefix(ln, "aws.") || strings.HasPrefix(ln, "amazon.") ||
			strings.HasPrefix(n, ".") || strings.HasSuffix(n, ".") || strings.Contains(n, "..") {
			return 0, errInvalidParameter("Message (user) attribute '%s' is invalid. The attribute name can contain only alphanumeric characters, hyphens, underscores and periods, must not start with AWS. or Amazon., and must not start or end with a period or contain consecutive periods.", n)
		}
		base, _, _ := strings.Cut(v.DataType, ".")
		switch base {
		case "String", "Number":
			if v.StringValue == nil || *v.StringValue == "" {
				return 0, errInvalidParameter("The message attribute '%s' must contain non-empty message attribute value for message attribute type '%s'.", n, base)
			}
			if base == "Number" {
				if _, err := strconv.ParseFloat(*v.StringValue, 64); err != nil {
					return 0, errInvalidParameter("Can't cast the value of message (user) attribute '%s' to a number.", n)
				}
			}
			if v.BinaryValue != nil {
				return 0, errInvalidParameter("The message attribute '%s' with type '%s' must use field 'String'.", n, base)
			}
			if !validChars(*v.StringValue) {
				return 0, errInvalidParameter("Message (user) attribute '%s' value contains invalid characters.", n)
			}
			size += len(*v.StringValue)
		case "Binary":
			if len(v.BinaryValue) == 0 {
				return 0, errInvalidParameter("The message attribute '%s' must contain non-empty message attribute value for message attribute type 'Binary'.", n)
			}
			if v.StringValue != nil {
				return 0, errInvalidParameter("The message attribute '%s' with type 'Binary' must use field 'Binary'.", n)
			}
			size += len(v.BinaryValue)
		default:
			return 0, errInvalidParameter("The type of message (user) attribute '%s' is invalid. You must use only the following supported type prefixes: Binary, Number, String.", n)
		}
		if len(v.StringListValues) > 0 || len(v.BinaryListValues) > 0 {
			return 0, errInvalidParameter("Message (user) attribute '%s': list values are not supported.", n)
		}
		size += len(n) + len(v.DataType)
	}
	return size, nil
}

// validChars reports whether s holds only the characters SQS allows in a message: #x9 | #xA |
// #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
func validChars(s string) bool {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return false
			}
		}
		switch {
		case r == 0x9, r == 0xA, r == 0xD, r >= 0x20 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
	}
	return true
}

// stored is a message as read from its stream.
type stored struct {
	ID        string
	Body      []byte
	Attrs     map[string]AttributeValue
	Sent      time.Time
	Group     string
	Dedup     string
	Trace     string
	DLQSource string
	Seq       uint64
	Received  int // deliveries so far, this one included
}

// decode reads a delivered message.
func decode(msg jetstream.Msg) (*stored, error) {
	md, err := msg.Metadata()
	if err != nil {
		return nil, err
	}
	h := msg.Headers()
	m := &stored{Body: msg.Data(), Seq: md.Sequence.Stream, Received: int(md.NumDelivered), Sent: md.Timestamp,
		ID: h.Get(hdrID), Group: h.Get(hdrGroup), Dedup: h.Get(hdrDedup), DLQSource: h.Get(hdrDLQSource)}
	if m.ID == "" {
		m.ID = h.Get(nats.MsgIdHdr)
	}
	if m.ID == "" {
		m.ID = uuid.NewSHA1(idSpace, []byte(md.Stream+"/"+strconv.FormatUint(m.Seq, 10))).String()
	}
	if ms, err := strconv.ParseInt(h.Get(hdrSent), 10, 64); err == nil {
		m.Sent = time.UnixMilli(ms)
	}
	if m.Trace = h.Get(hdrTrace); m.Trace == "" {
		m.Trace = h.Get(hdrTraceFlint)
	}
	if a := h.Get(hdrAttributes); a != "" {
		if err := json.Unmarshal([]byte(a), &m.Attrs); err != nil {
			m.Attrs = nil
		}
		return m, nil
	}
	if n, err := strconv.Atoi(h.Get(hdrAttributesLen)); err == nil && n >= 0 && n <= len(m.Body) {
		if err := json.Unmarshal(m.Body[:n], &m.Attrs); err != nil {
			m.Attrs = nil
		}
		m.Body = m.Body[n:]
		return m, nil
	}
	// Published by a NATS client: its own headers are String attributes.
	for k, vs := range h {
		if len(vs) == 0 || vs[0] == "" || strings.HasPrefix(k, "Nats-") || strings.HasPrefix(k, "Sqs-") || k == hdrTrace || k == hdrTraceFlint {
			continue
		}
		if m.Attrs == nil {
			m.Attrs = map[string]AttributeValue{}
		}
		v := vs[0]
		m.Attrs[k] = AttributeValue{DataType: "String", StringValue: &v}
	}
	return m, nil
}
