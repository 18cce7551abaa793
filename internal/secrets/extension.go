package secrets

import (
	"crypto/subtle"
	"net/http"
)

// ExtensionTokenHeader carries the caller's AWS_SESSION_TOKEN to the extension.
const ExtensionTokenHeader = "X-Aws-Parameters-Secrets-Token"

// ExtensionHandler answers the local HTTP interface of the AWS Parameters and Secrets Lambda
// Extension for one execution environment, so that functions written for it run unmodified:
// GET /secretsmanager/get?secretId=ID[&versionId=…][&versionStage=…] returns the
// GetSecretValue document. A request must carry the environment's session token (token) in
// X-Aws-Parameters-Secrets-Token, as the extension requires, so that nothing else on the host
// reaches another function's port. Flint has no Parameter Store: /systemparameterstore/ is
// refused with a clear message. Values are read from the store on each call (the extension's
// cache exists to spare remote calls; these are local).
func (s *Service) ExtensionHandler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /secretsmanager/get", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("secretId") == "" {
			writeError(w, errValidation("secretId is required"))
			return
		}
		b, err := s.GetSecretValueJSON(r.Context(), q.Get("secretId"), q.Get("versionId"), q.Get("versionStage"))
		if err != nil {
			e := asError(err)
			if e.Status >= 500 || e.Code == "DecryptionFailure" {
				s.log.Error("secrets extension", "secret", q.Get("secretId"), "err", err)
			}
			writeError(w, e)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
	mux.HandleFunc("/systemparameterstore/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, smError("InvalidRequestException", "Parameter Store is not available in Flint; use /secretsmanager/get."))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get(ExtensionTokenHeader)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			http.Error(w, "Unauthorized: missing or invalid "+ExtensionTokenHeader+" header", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}
