package logs

import "encoding/base64"

// TailBytes is how much of an invocation's output X-Amz-Log-Result carries.
const TailBytes = 4096

// Tail returns base64 (standard encoding, padded) of the last 4 KB of b, as Lambda returns in
// X-Amz-Log-Result for LogType=Tail. The cut is by bytes, as Lambda's is, and may split a
// multi-byte character.
func Tail(b []byte) string {
	if len(b) > TailBytes {
		b = b[len(b)-TailBytes:]
	}
	return base64.StdEncoding.EncodeToString(b)
}
