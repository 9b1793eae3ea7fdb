"""k-means and a Gaussian mixture on the embedded MNIST digits, scored on held-out digits."""

from unsup.cluster import GaussianMixture, KMeans
from unsup.data import find_mnist_dir, load
from unsup.metrics import clustering_report

train = load("mnist5k")
test = load("mnist-test") if find_mnist_dir() else train.split(0.2, random_state=0)[1]

km = KMeans(n_clusters=10, random_state=0).fit(train.X)
print("k-means:", clustering_report(test.y, km.predict(test.X)))

gmm = GaussianMixture(10, covariance_type="diag", reg_covar=1e-3, random_state=0).fit(train.X)
print("GMM:", clustering_report(test.y, gmm.predict(test.X)))
last = gmm.history_[-1]
print(f"EM: ln p = {last['log_likelihood']:.3f} = L {last['bound']:.3f} + KL {last['kl']:.2e}")
